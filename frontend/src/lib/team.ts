/**
 * A team campaign's progress, agreement and consensus in words and table rows
 * (GET /api/campaigns/{id}/progress, /agreement, /consensus). Pure functions, unit-tested.
 */

import type { Agreement, ConsensusFilter, LabelerProgress, Progress } from '../api';

/** Kappa as a number and, by Landis and Koch's scale, in words; null: not defined yet. */
export function describeKappa(kappa: number | null): string {
  if (kappa === null) return 'not defined yet';
  const words = kappa < 0 ? 'worse than chance' : kappa <= 0.2 ? 'slight' : kappa <= 0.4 ? 'fair'
    : kappa <= 0.6 ? 'moderate' : kappa <= 0.8 ? 'substantial' : 'almost perfect';
  return `${kappa.toFixed(2)} (${words})`;
}

export interface LabelerRow {
  username: string;
  role: string; // 'former member' when no longer one
  accept: number;
  reject: number;
  unsure: number;
  total: number;
  perHour: string;
  lastActive: string | null; // ISO time
  outstanding: number;
}

export function labelerRows(progress: Progress): LabelerRow[] {
  return progress.labelers.map((l: LabelerProgress) => ({
    username: l.user.username,
    role: l.role ?? 'former member',
    accept: l.counts['accept'] ?? 0,
    reject: l.counts['reject'] ?? 0,
    unsure: l.counts['unsure'] ?? 0,
    total: l.total,
    perHour: l.per_hour.toFixed(l.per_hour < 10 ? 1 : 0),
    lastActive: l.last_active,
    outstanding: l.outstanding,
  })).sort((a, b) => b.total - a.total || a.username.localeCompare(b.username));
}

export const CONSENSUS_ORDER: readonly ConsensusFilter[] = ['accept', 'reject', 'unsure', 'none'];

/** The consensus totals in a fixed order, with the objects voted on. */
export function consensusTotals(progress: Progress): { value: ConsensusFilter; count: number }[] {
  return CONSENSUS_ORDER.map((value) => ({ value, count: progress.consensus[value] ?? 0 }));
}

/** What the agreement figures rest on, in words. */
export function agreementBasis(agreement: Agreement): string {
  const f = agreement.fleiss;
  if (f.items === 0) return 'no object has labels from two labelers yet';
  return `${f.items} object${f.items === 1 ? '' : 's'} labeled by ${f.raters_min === f.raters_max
    ? f.raters_min : `${f.raters_min}–${f.raters_max}`} labelers`;
}
