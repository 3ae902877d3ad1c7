/**
 * The campaign settings form's text fields <-> the API's settings (null: not set, the server's
 * default applies), checked the way the server checks them (server/schemas/campaigns.py), so
 * that mistakes are named beside their field before sending.
 */

import type { CampaignSettings, ProbeStrategy } from '../api';

export const PROBE_STRATEGIES: readonly ProbeStrategy[] = ['top', 'uncertainty', 'mix'];
export const TIE_RULES = ['unsure', 'reject', 'none'] as const;
export const MAX_OVERLAP = 50; // server.teams.rules
export const MAX_HANDOUT_MINUTES = 7 * 24 * 60;

export interface SettingsFields {
  magWindow: string; // |Δmag_r| to the seed
  magRMin: string;
  magRMax: string;
  sourceTypes: string; // comma- or space-separated, e.g. "DEV, EXP"
  probeStrategy: ProbeStrategy | ''; // '': the default (top)
  unlabeledWeight: string;
  handout: boolean;
  overlap: string;
  handoutMinutes: string;
  consensusMinVotes: string;
  consensusTie: (typeof TIE_RULES)[number] | ''; // '': the default (unsure)
}

export function settingsFields(settings: CampaignSettings): SettingsFields {
  const text = (value: number | null | undefined) => (value == null ? '' : String(value));
  return {
    magWindow: text(settings.mag_window),
    magRMin: text(settings.mag_r_min),
    magRMax: text(settings.mag_r_max),
    sourceTypes: (settings.source_types ?? []).join(', '),
    probeStrategy: settings.probe_strategy ?? '',
    unlabeledWeight: text(settings.probe_unlabeled_weight),
    handout: settings.handout ?? false,
    overlap: text(settings.overlap),
    handoutMinutes: text(settings.handout_minutes),
    consensusMinVotes: text(settings.consensus_min_votes),
    consensusTie: settings.consensus_tie ?? '',
  };
}

export type SettingsField = keyof CampaignSettings;

export type ParsedSettings =
  | { ok: true; settings: Required<CampaignSettings> }
  | { ok: false; field: SettingsField; message: string };

/** A number typed into a field: null when empty, undefined when not a number. */
function optionalNumber(text: string): number | null | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

type Check = { field: SettingsField; value: number | null | undefined; min: number; max: number;
               integer?: boolean; message: string };

/** Every key set (null clears it on the server, which merges settings key by key). */
export function parseSettings(fields: SettingsFields): ParsedSettings {
  const window = optionalNumber(fields.magWindow);
  const low = optionalNumber(fields.magRMin);
  const high = optionalNumber(fields.magRMax);
  const weight = optionalNumber(fields.unlabeledWeight);
  const overlap = optionalNumber(fields.overlap);
  const minutes = optionalNumber(fields.handoutMinutes);
  const votes = optionalNumber(fields.consensusMinVotes);
  const checks: Check[] = [
    { field: 'mag_window', value: window, min: 0.01, max: 10,
      message: 'the magnitude window is from 0.01 to 10 magnitudes (empty: none)' },
    { field: 'mag_r_min', value: low, min: 0, max: 40,
      message: 'an r magnitude from 0 to 40 (empty: no limit)' },
    { field: 'mag_r_max', value: high, min: 0, max: 40,
      message: 'an r magnitude from 0 to 40 (empty: no limit)' },
    { field: 'probe_unlabeled_weight', value: weight, min: 0, max: 1,
      message: 'a weight from 0 to 1 (empty: 0.1)' },
    { field: 'overlap', value: overlap, min: 1, max: MAX_OVERLAP, integer: true,
      message: `a whole number of labelers from 1 to ${MAX_OVERLAP} (empty: 1)` },
    { field: 'handout_minutes', value: minutes, min: 1, max: MAX_HANDOUT_MINUTES,
      message: `minutes from 1 to ${MAX_HANDOUT_MINUTES} (a week; empty: 30)` },
    { field: 'consensus_min_votes', value: votes, min: 1, max: MAX_OVERLAP, integer: true,
      message: `a whole number of labels from 1 to ${MAX_OVERLAP} (empty: 1)` },
  ];
  for (const check of checks) {
    const { value } = check;
    if (value === undefined || (value !== null && (value < check.min || value > check.max
        || (check.integer && !Number.isInteger(value))))) {
      return { ok: false, field: check.field, message: check.message };
    }
  }
  if (low != null && high != null && low > high) {
    return { ok: false, field: 'mag_r_min',
             message: 'the brightest magnitude must not be fainter than the faintest' };
  }
  const types = fields.sourceTypes.split(/[\s,]+/).filter(Boolean).map((t) => t.toUpperCase());
  if (types.some((t) => t.length > 16) || types.length > 32) {
    return { ok: false, field: 'source_types',
             message: 'at most 32 source types of up to 16 characters each' };
  }
  return { ok: true, settings: {
    mag_window: window ?? null, mag_r_min: low ?? null, mag_r_max: high ?? null,
    source_types: types.length ? [...new Set(types)] : null,
    probe_strategy: fields.probeStrategy || null, probe_unlabeled_weight: weight ?? null,
    handout: fields.handout || null, // unticked: cleared (the default, off)
    overlap: overlap ?? null, handout_minutes: minutes ?? null,
    consensus_min_votes: votes ?? null, consensus_tie: fields.consensusTie || null,
  } };
}
