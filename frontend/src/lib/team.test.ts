import { describe, expect, it } from 'vitest';
import type { Agreement, Progress } from '../api';
import { agreementBasis, consensusTotals, describeKappa, labelerRows } from './team';

const progress: Progress = {
  window_minutes: 60,
  labelers: [
    { user: { id: 2, username: 'bea' }, role: 'labeler', counts: { accept: 1 }, total: 1,
      recent: 1, per_hour: 1, last_active: '2026-01-01T10:00:00Z', outstanding: 3 },
    { user: { id: 1, username: 'ada' }, role: null, counts: { accept: 2, reject: 5, unsure: 1 },
      total: 8, recent: 8, per_hour: 12.4, last_active: null, outstanding: 0 },
  ],
  consensus: { accept: 2, reject: 5, none: 1 } as Progress['consensus'],
};

describe('team progress', () => {
  it('puts the busiest labeler first, with every value counted', () => {
    const rows = labelerRows(progress);
    expect(rows.map((r) => r.username)).toEqual(['ada', 'bea']);
    expect(rows[0]).toMatchObject({ role: 'former member', accept: 2, reject: 5, unsure: 1,
                                    total: 8, perHour: '12' });
    expect(rows[1]).toMatchObject({ role: 'labeler', reject: 0, unsure: 0, perHour: '1.0',
                                    outstanding: 3 });
  });

  it('lists the consensus totals in a fixed order, zeros included', () => {
    expect(consensusTotals(progress)).toEqual([
      { value: 'accept', count: 2 }, { value: 'reject', count: 5 },
      { value: 'unsure', count: 0 }, { value: 'none', count: 1 }]);
  });

  it('says kappa in words', () => {
    expect(describeKappa(null)).toBe('not defined yet');
    expect(describeKappa(-0.1)).toBe('-0.10 (worse than chance)');
    expect(describeKappa(0.5)).toBe('0.50 (moderate)');
    expect(describeKappa(0.81)).toBe('0.81 (almost perfect)');
    expect(describeKappa(1)).toBe('1.00 (almost perfect)');
  });

  it('says what the agreement rests on', () => {
    const fleiss = { kappa: null, items: 0, ratings: 0, observed: null, expected: null,
                     category_share: {}, raters_min: 0, raters_max: 0 };
    expect(agreementBasis({ fleiss, pairs: [] } as Agreement))
      .toBe('no object has labels from two labelers yet');
    expect(agreementBasis({ fleiss: { ...fleiss, items: 1, raters_min: 2, raters_max: 2 },
                            pairs: [] })).toBe('1 object labeled by 2 labelers');
    expect(agreementBasis({ fleiss: { ...fleiss, items: 4, raters_min: 2, raters_max: 3 },
                            pairs: [] })).toBe('4 objects labeled by 2–3 labelers');
  });
});
