import { describe, expect, it } from 'vitest';
import { ApiError } from '../api';
import { describeRandomObject, describeSeed, parseSeed, seedError, type SeedFields } from './seeds';

const blank: SeedFields = { choice: 'object', objectId: '', ra: '', dec: '', toleranceArcsec: '',
                            file: null, note: '' };

describe('parseSeed', () => {
  it('reads an object id', () => {
    expect(parseSeed({ ...blank, objectId: ' 42 ', note: ' lens ' }))
      .toEqual({ ok: true, kind: 'json', seed: { object_id: 42, note: 'lens' } });
  });

  it('refuses object ids that are not whole non-negative numbers', () => {
    for (const objectId of ['', '-1', '3.5', 'abc', '1e400']) {
      expect(parseSeed({ ...blank, objectId })).toMatchObject({ ok: false, field: 'object_id' });
    }
  });

  it('reads a sky position, with the tolerance only when given', () => {
    expect(parseSeed({ ...blank, choice: 'sky', ra: '150.1', dec: '-2.5' }))
      .toEqual({ ok: true, kind: 'json', seed: { ra: 150.1, dec: -2.5, note: '' } });
    expect(parseSeed({ ...blank, choice: 'sky', ra: '0', dec: '90', toleranceArcsec: '10' }))
      .toEqual({ ok: true, kind: 'json', seed: { ra: 0, dec: 90, tolerance_arcsec: 10, note: '' } });
  });

  it('names the field that is out of range', () => {
    expect(parseSeed({ ...blank, choice: 'sky', ra: '360', dec: '0' })).toMatchObject({ field: 'ra' });
    expect(parseSeed({ ...blank, choice: 'sky', ra: '10', dec: '-91' })).toMatchObject({ field: 'dec' });
    expect(parseSeed({ ...blank, choice: 'sky', ra: '10', dec: '0', toleranceArcsec: '0' }))
      .toMatchObject({ field: 'tolerance_arcsec' });
    expect(parseSeed({ ...blank, choice: 'sky', ra: '10', dec: '0', toleranceArcsec: '61' }))
      .toMatchObject({ field: 'tolerance_arcsec' });
  });

  it('takes a non-empty file, leaving its format to the server', () => {
    const fits = new File([new Uint8Array(8)], 'lens.fits');
    expect(parseSeed({ ...blank, choice: 'upload', file: fits }))
      .toEqual({ ok: true, kind: 'upload', file: fits, note: '' });
    expect(parseSeed({ ...blank, choice: 'upload', file: new File([], 'lens.npy') }))
      .toMatchObject({ ok: false, field: 'file', message: 'lens.npy is empty' });
    expect(parseSeed({ ...blank, choice: 'upload' })).toMatchObject({ ok: false, field: 'file' });
  });

  it('read a drawn random object as an object seed, and ask for a draw without one', () => {
    expect(parseSeed({ ...blank, choice: 'random', objectId: '17' }))
      .toEqual({ ok: true, kind: 'json', seed: { object_id: 17, note: '' } });
    expect(parseSeed({ ...blank, choice: 'random' }))
      .toEqual({ ok: false, field: 'random', message: 'draw a random object first' });
    expect(describeRandomObject({ object_id: 12, mag_r: 19.314, source_type: 'DEV' }))
      .toBe('object 12 (r = 19.31, DEV)');
    expect(describeRandomObject({ object_id: 3, mag_r: null, source_type: null })).toBe('object 3');
  });
});

describe('describeSeed', () => {
  const base = { object_id: 7, ra: null, dec: null, separation_arcsec: null, note: '' };
  it('says what each kind of seed is', () => {
    expect(describeSeed({ ...base, kind: 'object' })).toBe('object 7');
    expect(describeSeed({ ...base, kind: 'sky', ra: 150, dec: 2.25, separation_arcsec: 0.4 }))
      .toBe('RA 150.00000°, Dec 2.25000° → object 7 (0.40″ away)');
    expect(describeSeed({ ...base, kind: 'vector', object_id: null, note: 'lens.fits' }))
      .toBe('uploaded cutout lens.fits');
  });
});

describe('seedError', () => {
  it('puts a field error beside its field, with the server\u2019s sentence when it has one', () => {
    const far = new ApiError(422, 'Unprocessable Content', 'no survey object within 5″ of ...',
                             { json: { tolerance_arcsec: ['the nearest object is 9.1 arcsec away'] } });
    expect(seedError(far)).toEqual({ field: 'tolerance_arcsec', message: 'no survey object within 5″ of ...' });
    const invalid = new ApiError(422, 'Unprocessable Content',
                                 'the request is not valid: see errors for each field',
                                 { json: { ra: ['Must be greater than or equal to 0.'] } });
    expect(seedError(invalid)).toEqual({ field: 'ra', message: 'Must be greater than or equal to 0.' });
    const upload = new ApiError(422, 'Unprocessable Content', 'the file is not FITS or .npy',
                                { files: { file: ['the file is not FITS or .npy'] } });
    expect(seedError(upload).field).toBe('file');
  });

  it('puts other refusals on the form', () => {
    const missing = new ApiError(404, 'Not Found', 'object 99999 is not in the survey');
    expect(seedError(missing)).toEqual({ field: 'form', message: 'object 99999 is not in the survey' });
    expect(seedError(new Error('x')).field).toBe('form');
  });
});
