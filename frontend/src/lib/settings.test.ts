import { describe, expect, it } from 'vitest';
import { parseSettings, settingsFields } from './settings';

const empty = { magWindow: '', magRMin: '', magRMax: '', sourceTypes: '' };

describe('campaign settings', () => {
  it('turn empty fields into cleared settings', () => {
    expect(parseSettings(empty)).toEqual({ ok: true, settings: {
      mag_window: null, mag_r_min: null, mag_r_max: null, source_types: null } });
  });

  it('read numbers and source types', () => {
    expect(parseSettings({ magWindow: '0.5', magRMin: '16', magRMax: '21.5',
                           sourceTypes: 'dev, EXP  rex,DEV' })).toEqual({ ok: true, settings: {
      mag_window: 0.5, mag_r_min: 16, mag_r_max: 21.5, source_types: ['DEV', 'EXP', 'REX'] } });
  });

  it('name the field that is wrong', () => {
    expect(parseSettings({ ...empty, magWindow: '0' })).toMatchObject({ field: 'mag_window' });
    expect(parseSettings({ ...empty, magWindow: 'half' })).toMatchObject({ field: 'mag_window' });
    expect(parseSettings({ ...empty, magRMax: '41' })).toMatchObject({ field: 'mag_r_max' });
    expect(parseSettings({ ...empty, magRMin: '22', magRMax: '20' }))
      .toMatchObject({ field: 'mag_r_min' });
    expect(parseSettings({ ...empty, sourceTypes: 'X'.repeat(17) }))
      .toMatchObject({ field: 'source_types' });
  });

  it('round-trip through the form', () => {
    const settings = { mag_window: 0.5, mag_r_min: null, mag_r_max: 21, source_types: ['DEV'] };
    expect(parseSettings(settingsFields(settings))).toEqual({ ok: true, settings });
    expect(settingsFields({})).toEqual(empty);
  });
});
