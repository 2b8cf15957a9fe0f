#!/usr/bin/env node
// Runs the compiled test suites with mocha and ends with the summary line CI
// reads: "N passed, N failed" (", N skipped" when any were skipped).
// Usage: node test/run.js [--unit | --e2e] [--grep PATTERN] [files...]
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const Mocha = require('mocha');

const args = process.argv.slice(2);
const collect = (dir) => collectFn(dir);
const root = path.join(__dirname, '..', 'dist', 'test');
let grep;
const files = [];
let layer = 'all';
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--unit') layer = 'unit';
  else if (a === '--e2e') layer = 'e2e';
  else if (a === '--grep' || a === '-g') grep = args[++i];
  else if (fs.existsSync(a) && fs.statSync(a).isDirectory()) files.push(...collect(path.resolve(a)));
  else files.push(path.resolve(a));
}

function collectFn(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => path.join(dir, f))
    .sort();
}

let selected = files.length > 0 ? files : collect(root);
// Suites that run real Envoy: test/e2e, and the compose check (it validates bootstraps with Envoy).
const realEnvoy = (f) =>
  f.includes(`${path.sep}e2e${path.sep}`) || f.includes(`${path.sep}compose${path.sep}`);
if (layer === 'unit') selected = selected.filter((f) => !realEnvoy(f));
if (layer === 'e2e') selected = selected.filter(realEnvoy);

const { mochaHooks } = require(path.join(root, 'support', 'processes.js'));
const mocha = new Mocha({ timeout: 60_000, reporter: 'spec', grep, rootHooks: mochaHooks });
for (const f of selected) mocha.addFile(f);

let passed = 0;
let failed = 0;
let skipped = 0;
const runner = mocha.run((failures) => {
  const summary = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
  console.log(`\n${summary}`);
  process.exitCode = failures > 0 || failed > 0 || passed === 0 ? 1 : 0;
});
runner.on('pass', () => passed++);
runner.on('fail', () => failed++);
runner.on('pending', () => skipped++);
