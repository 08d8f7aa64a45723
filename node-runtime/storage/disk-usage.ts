// How many bytes a data directory holds on disk: the sum of its files' allocated blocks (as
// `du` counts them), for /status `diskBytes` and metcd_disk_data_bytes. A few files per engine
// (leveldb: its tables and logs), read with one stat each per call.

import { readdirSync, statSync, type Dirent } from 'node:fs';
import path from 'node:path';

export function dataDirBytes(dir: string): number {
  let bytes = 0;
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0; // gone (a test removed it) or not yet made
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    try {
      if (e.isDirectory()) bytes += dataDirBytes(p);
      else if (e.isFile()) bytes += statSync(p).blocks * 512;
    } catch {
      // removed between the listing and the stat (a compaction deleting a file)
    }
  }
  return bytes;
}
