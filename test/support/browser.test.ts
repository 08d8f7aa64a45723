// The browser tests' setup (browser.ts) installs chromium when it is missing instead of skipping:
// shown on a binary path that does not exist, with the installer replaced by a stand-in (this
// machine's chromium stays as it is).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureChromium } from './browser.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'metcd-browser-setup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ensureChromium', () => {
  it('answers a binary that is there without installing anything', () => {
    const present = path.join(dir, 'present');
    writeFileSync(present, '');
    let installs = 0;
    expect(ensureChromium({ executablePath: present, isRoot: true, install: () => installs++ })).toBe(present);
    expect(installs).toBe(0);
  });

  it('as root, installs a missing binary and answers it', () => {
    const missing = path.join(dir, 'installed-on-demand');
    let installs = 0;
    const install = () => {
      installs++;
      writeFileSync(missing, '');
    };
    expect(ensureChromium({ executablePath: missing, isRoot: true, install })).toBe(missing);
    expect(installs).toBe(1);
  });

  it('as anyone else, fails saying exactly what to install, and installs nothing', () => {
    let installs = 0;
    expect(() => ensureChromium({ executablePath: path.join(dir, 'nowhere'), isRoot: false, install: () => installs++ })).toThrow(
      'install it as root: apt-get update && apt-get install -y chromium',
    );
    expect(installs).toBe(0);
  });

  it('fails when the install ran but left no binary, and passes an install failure on', () => {
    expect(() => ensureChromium({ executablePath: path.join(dir, 'still-missing'), isRoot: true, install: () => {} })).toThrow(
      /ran, but .*still-missing is still missing/,
    );
    expect(() =>
      ensureChromium({
        executablePath: path.join(dir, 'still-missing'),
        isRoot: true,
        install: () => {
          throw new Error('apt-get install -y chromium failed (exit 100)');
        },
      }),
    ).toThrow(/exit 100/);
  });
});
