import { describe, expect, it } from 'vitest';
import { parseSettings, settingsFields, type SettingsFields } from './settings';

const empty: SettingsFields = {
  magWindow: '', magRMin: '', magRMax: '', sourceTypes: '', probeStrategy: '',
  unlabeledWeight: '', handout: false, overlap: '', handoutMinutes: '', consensusMinVotes: '',
  consensusTie: '',
};
const cleared = {
  mag_window: null, mag_r_min: null, mag_r_max: null, source_types: null, probe_strategy: null,
  probe_unlabeled_weight: null, handout: null, overlap: null, handout_minutes: null,
  consensus_min_votes: null, consensus_tie: null,
};

describe('campaign settings', () => {
  it('turn empty fields into cleared settings (the server defaults apply)', () => {
    expect(parseSettings(empty)).toEqual({ ok: true, settings: cleared });
  });

  it('read numbers, source types and choices', () => {
    expect(parseSettings({ ...empty, magWindow: '0.5', magRMin: '16', magRMax: '21.5',
                           sourceTypes: 'dev, EXP  rex,DEV', probeStrategy: 'mix',
                           unlabeledWeight: '0', handout: true, overlap: '2',
                           handoutMinutes: '45', consensusMinVotes: '2',
                           consensusTie: 'none' })).toEqual({ ok: true, settings: {
      mag_window: 0.5, mag_r_min: 16, mag_r_max: 21.5, source_types: ['DEV', 'EXP', 'REX'],
      probe_strategy: 'mix', probe_unlabeled_weight: 0, handout: true, overlap: 2,
      handout_minutes: 45, consensus_min_votes: 2, consensus_tie: 'none' } });
  });

  it('name the field that is wrong', () => {
    expect(parseSettings({ ...empty, magWindow: '0' })).toMatchObject({ field: 'mag_window' });
    expect(parseSettings({ ...empty, magWindow: 'half' })).toMatchObject({ field: 'mag_window' });
    expect(parseSettings({ ...empty, magRMax: '41' })).toMatchObject({ field: 'mag_r_max' });
    expect(parseSettings({ ...empty, magRMin: '22', magRMax: '20' }))
      .toMatchObject({ field: 'mag_r_min' });
    expect(parseSettings({ ...empty, sourceTypes: 'X'.repeat(17) }))
      .toMatchObject({ field: 'source_types' });
    expect(parseSettings({ ...empty, unlabeledWeight: '1.5' }))
      .toMatchObject({ field: 'probe_unlabeled_weight' });
    expect(parseSettings({ ...empty, overlap: '1.5' })).toMatchObject({ field: 'overlap' });
    expect(parseSettings({ ...empty, overlap: '51' })).toMatchObject({ field: 'overlap' });
    expect(parseSettings({ ...empty, handoutMinutes: '0' }))
      .toMatchObject({ field: 'handout_minutes' });
    expect(parseSettings({ ...empty, consensusMinVotes: 'two' }))
      .toMatchObject({ field: 'consensus_min_votes' });
  });

  it('round-trip through the form', () => {
    const settings = { ...cleared, mag_window: 0.5, mag_r_max: 21, source_types: ['DEV'],
                       probe_strategy: 'uncertainty' as const, handout: true, overlap: 3 };
    expect(parseSettings(settingsFields(settings))).toEqual({ ok: true, settings });
    expect(settingsFields({})).toEqual(empty);
  });
});
