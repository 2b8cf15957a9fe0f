// Tracks every process the tests start, so that a root hook can prove none is
// left after the suite, and the test process kills stragglers by PID on exit.

const live = new Set<number>();

export function track(pid: number): void {
  live.add(pid);
}

export function untrack(pid: number): void {
  live.delete(pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** PIDs the tests started that still run. */
export function leftovers(): number[] {
  return [...live].filter(alive);
}

process.on('exit', () => {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** Mocha root hooks (loaded by test/run.js): the suite fails if a started process outlives it. */
export const mochaHooks = {
  afterAll(): void {
    const left = leftovers();
    if (left.length > 0) {
      for (const pid of left) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      throw new Error(`processes started by tests were still running after the suite: ${left.join(', ')}`);
    }
  },
};
