// CPU and memory of a process from /proc (Linux): CPU seconds from
// /proc/<pid>/stat (utime + stime), RSS from /proc/<pid>/status (VmRSS, VmHWM),
// sampled on an interval so that each scenario can report its window.
import fs from 'node:fs';
import os from 'node:os';

// USER_HZ is 100 on every Linux this runs on (getconf CLK_TCK).
const CLK_TCK = 100;

export interface ProcSample {
  readonly at: number;
  readonly cpuSeconds: number;
  readonly rssMb: number;
  readonly hwmMb: number;
}

/** One reading; undefined when the process is gone. */
export function readProc(pid: number): ProcSample | undefined {
  try {
    // Fields after the parenthesized command name (which may hold spaces): utime is field 14, stime 15.
    const cpuSeconds = cpuOfStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0);
    return {
      at: Date.now(),
      cpuSeconds,
      rssMb: kb('VmRSS') / 1024,
      hwmMb: kb('VmHWM') / 1024,
    };
  } catch {
    return undefined;
  }
}

function cpuOfStat(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/**
 * CPU seconds of the main thread (tid = pid: JavaScript, the event loop) and of
 * every other thread (libuv pool: crypto key generation, fs; V8: GC, compiler).
 */
export function readThreads(pid: number): { main: number; other: number } {
  let main = 0;
  let other = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        const cpu = cpuOfStat(fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        if (Number(tid) === pid) main += cpu;
        else other += cpu;
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return { main, other };
}

/** Resets the process's peak RSS (VmHWM) to its current RSS; false when not permitted. */
export function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The machine's TcpExt ListenOverflows counter (connections dropped for a full accept queue). */
export function listenOverflows(): number {
  return tcpExt(['ListenOverflows']).ListenOverflows ?? 0;
}

/** Machine-wide TcpExt counters of /proc/net/netstat (empty where there is none). */
export function tcpExt(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      if (!lines[i].startsWith('TcpExt:') || !lines[i + 1].startsWith('TcpExt:')) continue;
      const keys = lines[i].split(/\s+/);
      const values = lines[i + 1].split(/\s+/);
      for (const n of names) {
        const at = keys.indexOf(n);
        if (at > 0) out[n] = Number(values[at]);
      }
      break;
    }
  } catch {
    // not Linux
  }
  return out;
}

/** TcpExt counters of stalls a slow receiver or a lost segment causes (zero windows, timeouts). */
export const TCP_STALL_COUNTERS = [
  'TCPToZeroWindowAdv',
  'TCPFromZeroWindowAdv',
  'TCPWantZeroWindowAdv',
  'TCPZeroWindowDrop',
  'TCPTimeouts',
  'TCPLostRetransmit',
] as const;

/** MemAvailable of the machine, in MB. */
export function memAvailableMb(): number {
  try {
    const m = fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemAvailable:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : os.freemem() / 1048576;
  } catch {
    return os.freemem() / 1048576;
  }
}

export interface WindowStart {
  readonly at: number;
  readonly cpuSeconds: number;
  readonly rssMb: number;
  readonly threads: { main: number; other: number };
}

export interface WindowStats {
  readonly seconds: number;
  readonly cpuSeconds: number;
  /** Of which on the main thread (JavaScript) and on other threads (libuv pool, V8 helpers). */
  readonly mainThreadCpuSeconds: number;
  readonly otherThreadsCpuSeconds: number;
  /** Average cores used over the window. */
  readonly cpuCores: number;
  readonly startRssMb: number;
  readonly endRssMb: number;
  /** The largest of the sampled RSS and of VmHWM (when it could be reset at the window start). */
  readonly peakRssMb: number;
  /** Median RSS of the samples in the window's last 2 s. */
  readonly steadyRssMb: number;
  /** Least-squares slope of RSS over the window (MB per minute). */
  readonly rssSlopeMbPerMin: number;
  readonly samples: number;
}

/** Samples a process every `intervalMs`; windows report CPU and RSS between two marks. */
export class ProcSampler {
  private readonly samples: ProcSample[] = [];
  private readonly timer: NodeJS.Timeout;
  private hwmReset = false;

  constructor(
    readonly pid: number,
    intervalMs = 250,
    private readonly onSample?: (s: ProcSample) => void,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): ProcSample | undefined {
    const s = readProc(this.pid);
    if (s) {
      this.samples.push(s);
      if (this.samples.length > 20_000) this.samples.splice(0, 10_000);
      this.onSample?.(s);
    }
    return s;
  }

  /** Starts a window: takes a sample now and resets VmHWM. */
  mark(): WindowStart {
    this.hwmReset = resetPeakRss(this.pid);
    const s = this.sample() ?? this.samples[this.samples.length - 1];
    return {
      at: s?.at ?? Date.now(),
      cpuSeconds: s?.cpuSeconds ?? 0,
      rssMb: s?.rssMb ?? 0,
      threads: readThreads(this.pid),
    };
  }

  /** CPU and RSS between `start` (from mark()) and now. */
  window(start: WindowStart): WindowStats {
    const threads = readThreads(this.pid);
    const end = this.sample() ?? this.samples[this.samples.length - 1];
    const inWin = this.samples.filter((s) => s.at >= start.at);
    const seconds = Math.max(0.001, ((end?.at ?? Date.now()) - start.at) / 1000);
    const cpuSeconds = (end?.cpuSeconds ?? start.cpuSeconds) - start.cpuSeconds;
    const sampledPeak = Math.max(start.rssMb, ...inWin.map((s) => s.rssMb));
    const peakRssMb = this.hwmReset && end ? Math.max(sampledPeak, end.hwmMb) : sampledPeak;
    const tail = inWin.filter((s) => s.at >= (end?.at ?? 0) - 2000).map((s) => s.rssMb);
    tail.sort((a, b) => a - b);
    const steady = tail.length > 0 ? tail[Math.floor(tail.length / 2)] : (end?.rssMb ?? 0);
    return {
      seconds,
      cpuSeconds,
      mainThreadCpuSeconds: threads.main - start.threads.main,
      otherThreadsCpuSeconds: threads.other - start.threads.other,
      cpuCores: cpuSeconds / seconds,
      startRssMb: start.rssMb,
      endRssMb: end?.rssMb ?? 0,
      peakRssMb,
      steadyRssMb: steady,
      rssSlopeMbPerMin: slope(inWin.map((s) => [(s.at - start.at) / 60_000, s.rssMb])),
      samples: inWin.length,
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function slope(points: [number, number][]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
