/**
 * Reading the seed form: what the user typed, checked before anything is sent, so that a
 * typo gets a message beside the field rather than a round trip.
 */

import { ApiError, type ApiClient, type Seed, type SeedInput } from '../api';

/** 'random': an object drawn at random (GET /api/survey/random), kept in `objectId`. */
export type SeedChoice = 'object' | 'random' | 'sky' | 'upload';

export interface SeedFields {
  choice: SeedChoice;
  objectId: string;
  ra: string; // degrees
  dec: string; // degrees
  toleranceArcsec: string;
  file: File | null;
  note: string;
}

export type ParsedSeed =
  | { ok: true; kind: 'json'; seed: SeedInput }
  | { ok: true; kind: 'upload'; file: File; note: string }
  | { ok: false; field: string; message: string };

function number(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : null;
}

export function parseSeed(fields: SeedFields): ParsedSeed {
  const note = fields.note.trim();
  switch (fields.choice) {
    case 'object': {
      const id = number(fields.objectId);
      if (id === null || !Number.isSafeInteger(id) || id < 0) {
        return { ok: false, field: 'object_id',
                 message: 'an object id is a whole number, 0 or more (the object\u2019s row in the survey)' };
      }
      return { ok: true, kind: 'json', seed: { object_id: id, note } };
    }
    case 'random': {
      const id = number(fields.objectId);
      if (id === null || !Number.isSafeInteger(id) || id < 0) {
        return { ok: false, field: 'random', message: 'draw a random object first' };
      }
      return { ok: true, kind: 'json', seed: { object_id: id, note } };
    }
    case 'sky': {
      const ra = number(fields.ra);
      const dec = number(fields.dec);
      if (ra === null || ra < 0 || ra >= 360) {
        return { ok: false, field: 'ra', message: 'RA is in degrees, from 0 to under 360' };
      }
      if (dec === null || dec < -90 || dec > 90) {
        return { ok: false, field: 'dec', message: 'Dec is in degrees, from -90 to 90' };
      }
      const tolerance = fields.toleranceArcsec.trim() === '' ? undefined
        : number(fields.toleranceArcsec);
      if (tolerance === null || (tolerance !== undefined && (tolerance <= 0 || tolerance > 60))) {
        return { ok: false, field: 'tolerance_arcsec',
                 message: 'the tolerance is in arcseconds, above 0 and at most 60' };
      }
      return { ok: true, kind: 'json',
               seed: { ra, dec, ...(tolerance === undefined ? {} : { tolerance_arcsec: tolerance }),
                       note } };
    }
    case 'upload': {
      if (!fields.file) {
        return { ok: false, field: 'file', message: 'choose a FITS or .npy file of a g, r, z cutout' };
      }
      if (fields.file.size === 0) {
        return { ok: false, field: 'file', message: `${fields.file.name} is empty` };
      }
      // the server reads the file by its content and says what is wrong with it
      return { ok: true, kind: 'upload', file: fields.file, note };
    }
  }
}

/** A seed in words, for lists and messages. */
/** A drawn object in words: "object 12 (r = 19.31, DEV)". */
export function describeRandomObject(o: { object_id: number; mag_r: number | null;
  source_type: string | null }): string {
  const facts = [o.mag_r === null ? null : `r = ${o.mag_r.toFixed(2)}`, o.source_type]
    .filter((f) => f !== null);
  return `object ${o.object_id}${facts.length ? ` (${facts.join(', ')})` : ''}`;
}

export function describeSeed(seed: { kind: string; object_id: number | null; ra: number | null;
  dec: number | null; separation_arcsec: number | null; note: string }): string {
  switch (seed.kind) {
    case 'object': return `object ${seed.object_id}`;
    case 'sky':
      return `RA ${seed.ra?.toFixed(5)}°, Dec ${seed.dec?.toFixed(5)}° → object ${seed.object_id}` +
        (seed.separation_arcsec === null ? '' : ` (${seed.separation_arcsec.toFixed(2)}″ away)`);
    default: return `uploaded cutout${seed.note ? ` ${seed.note}` : ''}`;
  }
}

/** Send a parsed seed to the campaign (JSON, or a multipart upload). */
export function submitSeed(client: Pick<ApiClient, 'addSeed' | 'uploadSeed'>, campaignId: number,
                           parsed: Extract<ParsedSeed, { ok: true }>): Promise<Seed> {
  return parsed.kind === 'json' ? client.addSeed(campaignId, parsed.seed)
    : client.uploadSeed(campaignId, parsed.file, parsed.file.name, parsed.note);
}

const SEED_FIELDS: readonly (readonly [string, string])[] = [
  ['json', 'object_id'], ['json', 'ra'], ['json', 'dec'], ['json', 'tolerance_arcsec'],
  ['files', 'file'],
];
const GENERIC_VALIDATION = 'the request is not valid';

/** Where the server's refusal of a seed belongs: beside one field, or ('form') the form. */
export function seedError(error: unknown): { field: string; message: string } {
  if (!(error instanceof ApiError)) return { field: 'form', message: String(error) };
  for (const [location, field] of SEED_FIELDS) {
    const messages = error.fieldMessages(field, location);
    if (messages.length) {
      return { field, message: error.detail.startsWith(GENERIC_VALIDATION)
        ? messages.join(' ') : error.detail };
    }
  }
  return { field: 'form', message: error.detail };
}
