import { describe, expect, it } from 'vitest';
import type { Export } from '../api';
import { describeExport, exportActive, exportInput, formatBytes } from './exports';

function record(extra: Partial<Export>): Export {
  return { id: 1, campaign_id: 2, format: 'csv', filters: {}, options: {}, probe_version: null,
           created_by: 'ada', created_at: 'x', status: 'queued', progress: null, message: null,
           error: null, row_count: null, byte_size: null, sha256: null, finished_at: null,
           download: null, ...extra };
}

describe('exports', () => {
  it('size files in words', () => {
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(900)).toBe('900 B');
    expect(formatBytes(2048)).toBe('2.0 kB');
    expect(formatBytes(50 * 1024)).toBe('50 kB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MB');
  });

  it('say where an export is', () => {
    expect(describeExport(record({}))).toBe('queued');
    expect(describeExport(record({ status: 'running', progress: 0.25 }))).toBe('running: 25 %');
    expect(describeExport(record({ status: 'succeeded', row_count: 1, byte_size: 300 })))
      .toBe('ready: 1 row, 300 B');
    expect(describeExport(record({ status: 'failed', error: 'disk full' })))
      .toBe('failed: disk full');
    expect(exportActive(record({ status: 'running' }))).toBe(true);
    expect(exportActive(record({ status: 'succeeded' }))).toBe(false);
  });

  it('send a consensus filter only when one is chosen', () => {
    expect(exportInput('csv', [])).toEqual({ format: 'csv' });
    expect(exportInput('fits', ['accept', 'none']))
      .toEqual({ format: 'fits', filters: { consensus: ['accept', 'none'] } });
  });
});
