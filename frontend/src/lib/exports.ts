/**
 * Exports in words (GET/POST /api/campaigns/{id}/exports): the formats the server writes,
 * an export's state, and the file's size. Pure functions, unit-tested.
 */

import type { ConsensusFilter, Export, ExportFormat, ExportInput } from '../api';

/** The server's formats (server/exports/files.py), in the order offered. */
export const EXPORT_FORMATS: readonly { format: ExportFormat; text: string }[] = [
  { format: 'csv', text: 'CSV: one row per object (ids, position, catalog, every labeler’s label, consensus, probe score)' },
  { format: 'json', text: 'JSON: the same rows, with the export’s description' },
  { format: 'fits', text: 'FITS: the same rows as a binary table' },
  { format: 'hdf5', text: 'HDF5: a training set (cutouts, labels, a train/validation split)' },
  { format: 'zooniverse', text: 'Zooniverse: a subject-set manifest with one PNG per object, zipped' },
];

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '—';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Whether an export may still change (poll it). */
export function exportActive(item: Export): boolean {
  return item.status === 'queued' || item.status === 'running';
}

export function describeExport(item: Export): string {
  switch (item.status) {
    case 'queued': return 'queued';
    case 'running':
      return `running${item.progress === null ? '' : `: ${Math.round(item.progress * 100)} %`}`;
    case 'succeeded':
      return `ready: ${item.row_count ?? 0} row${item.row_count === 1 ? '' : 's'}, ` +
        formatBytes(item.byte_size);
    case 'failed': return `failed: ${item.error ?? 'no reason given'}`;
    case 'cancelled': return 'cancelled';
  }
}

/** The request for a format and a consensus filter (none chosen: every labeled object). */
export function exportInput(format: ExportFormat, consensus: readonly ConsensusFilter[])
  : ExportInput {
  return consensus.length ? { format, filters: { consensus: [...consensus] } } : { format };
}
