#!/usr/bin/env node
// `meshplane`: the control-plane process. `meshplane serve` runs the xDS server.
import { AdsServer, XdsCache } from '../xds';

interface ServeFlags {
  xdsAddress: string;
}

function parseServeFlags(argv: string[]): ServeFlags {
  const flags: ServeFlags = { xdsAddress: process.env.MESHPLANE_XDS_ADDRESS ?? '0.0.0.0:18000' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [name, inline] = a.split('=', 2);
    const value = () => inline ?? argv[++i];
    if (name === '--xds-address') flags.xdsAddress = value();
    else throw new Error(`unknown flag ${name}`);
  }
  return flags;
}

async function serve(argv: string[]): Promise<void> {
  const flags = parseServeFlags(argv);
  const server = new AdsServer({ cache: new XdsCache() });
  const port = await server.listen(flags.xdsAddress);
  console.log(JSON.stringify({ level: 'info', msg: 'meshplane serving', xds: flags.xdsAddress, port }));
  const stop = async () => {
    await server.shutdown(5_000);
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(argv: string[]): Promise<void> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'serve':
      return serve(rest);
    default:
      console.error('usage: meshplane serve [--xds-address host:port]');
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
