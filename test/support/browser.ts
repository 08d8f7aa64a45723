// A real browser for the dashboard's tests: Debian's chromium, driven by playwright-core (which
// brings no browser of its own). The project installs it itself: when the binary is missing and
// the tests run as root (CI on Debian), `apt-get update && apt-get install -y chromium`; as
// anyone else the tests fail with the command to run. Never a silent skip.
//
// Chromium is started so that it never reaches the internet: no component updates, no sync, no
// background networking, no QUIC, a fresh profile per launch; the pages it opens are on loopback.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Where Debian's chromium package puts its binary. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
/** Screenshots the browser tests keep (git-ignored). */
export const ARTIFACTS_DIR = new URL('../artifacts/', import.meta.url).pathname;

const INSTALL_COMMAND = 'apt-get update && apt-get install -y chromium';

export interface EnsureOptions {
  /** The binary to look for (a test points it at a missing path). */
  executablePath?: string;
  /** The installer to run when it is missing (default: apt-get, as root only). */
  install?: () => void;
  /** Whether this process is root (default: process.getuid() === 0). */
  isRoot?: boolean;
}

function aptInstall(): void {
  for (const args of [['update'], ['install', '-y', 'chromium']]) {
    const run = spawnSync('apt-get', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      encoding: 'utf8',
      timeout: 10 * 60_000,
    });
    if (run.status !== 0) {
      throw new Error(
        `apt-get ${args.join(' ')} failed (exit ${String(run.status)}): ${(run.stderr || run.stdout || String(run.error)).slice(-2000)}`,
      );
    }
  }
}

/**
 * The chromium binary, installed first if it is missing and this process may install it. Throws
 * with the exact install command when it is missing and cannot be installed from here.
 */
export function ensureChromium(opts: EnsureOptions = {}): string {
  const binary = opts.executablePath ?? CHROMIUM_PATH;
  if (existsSync(binary)) return binary;
  const isRoot = opts.isRoot ?? process.getuid?.() === 0;
  if (!isRoot) {
    throw new Error(`the browser tests need Debian's chromium at ${binary}; install it as root: ${INSTALL_COMMAND}`);
  }
  (opts.install ?? aptInstall)();
  if (!existsSync(binary)) throw new Error(`${INSTALL_COMMAND} ran, but ${binary} is still missing`);
  return binary;
}

/** A headless chromium on a fresh profile (playwright-core makes and removes it). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = ensureChromium({ executablePath: process.env['METCD_CHROMIUM'] ?? CHROMIUM_PATH });
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-domain-reliability',
      '--no-pings',
    ],
  });
}

/** The path of a screenshot kept as an artifact (the directory is made on first use). */
export function artifact(name: string): string {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return path.join(ARTIFACTS_DIR, name);
}
