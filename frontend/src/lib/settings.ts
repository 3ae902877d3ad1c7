/**
 * The campaign settings form's text fields <-> the API's settings (null: not set), checked the
 * way the server checks them, so that mistakes are named beside their field before sending.
 */

import type { CampaignSettings } from '../api';

export interface SettingsFields {
  magWindow: string; // |Δmag_r| to the seed
  magRMin: string;
  magRMax: string;
  sourceTypes: string; // comma- or space-separated, e.g. "DEV, EXP"
}

export function settingsFields(settings: CampaignSettings): SettingsFields {
  const text = (value: number | null | undefined) => (value == null ? '' : String(value));
  return {
    magWindow: text(settings.mag_window),
    magRMin: text(settings.mag_r_min),
    magRMax: text(settings.mag_r_max),
    sourceTypes: (settings.source_types ?? []).join(', '),
  };
}

export type ParsedSettings =
  | { ok: true; settings: Required<CampaignSettings> }
  | { ok: false; field: keyof CampaignSettings; message: string };

function optionalNumber(text: string): number | null | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined; // undefined: not a number
}

/** Every key set (null clears it on the server, which merges settings key by key). */
export function parseSettings(fields: SettingsFields): ParsedSettings {
  const window = optionalNumber(fields.magWindow);
  if (window === undefined || (window !== null && (window < 0.01 || window > 10))) {
    return { ok: false, field: 'mag_window',
             message: 'the magnitude window is from 0.01 to 10 magnitudes (empty: none)' };
  }
  const low = optionalNumber(fields.magRMin);
  const high = optionalNumber(fields.magRMax);
  for (const [field, value] of [['mag_r_min', low], ['mag_r_max', high]] as const) {
    if (value === undefined || (value !== null && (value < 0 || value > 40))) {
      return { ok: false, field, message: 'an r magnitude from 0 to 40 (empty: no limit)' };
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
  return { ok: true, settings: { mag_window: window, mag_r_min: low ?? null,
                                 mag_r_max: high ?? null,
                                 source_types: types.length ? [...new Set(types)] : null } };
}
