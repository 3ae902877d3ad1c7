import { describe, expect, it } from 'vitest';
import { brightnessOf, BRIGHTNESS_STEPS, columnCount, formatScore, tileName } from './grid';

describe('columnCount', () => {
  it('counts the tiles on the first row', () => {
    const tiles = [0, 0, 0, 160, 160, 160, 320].map((offsetTop) => ({ offsetTop }));
    expect(columnCount(tiles)).toBe(3);
  });

  it('is 1 for an empty or single-column grid', () => {
    expect(columnCount([])).toBe(1);
    expect(columnCount([{ offsetTop: 0 }, { offsetTop: 100 }])).toBe(1);
  });
});

describe('tiles', () => {
  const item = { object_id: 42, score: 0.91234, score_kind: 'similarity' as const };

  it('name the object, its label and its score for screen readers', () => {
    expect(tileName(item, 'accept', false, null))
      .toBe('Object 42, accepted, similarity score 0.912');
    expect(tileName({ ...item, score: null, score_kind: null }, null, true, null))
      .toBe('Object 42, unlabeled, saving');
    expect(tileName(item, 'reject', false, 'server down'))
      .toContain('not saved: server down');
  });

  it('format scores by kind', () => {
    expect(formatScore(item)).toBe('sim. 0.912');
    expect(formatScore({ ...item, score_kind: 'probe' })).toBe('probe 0.912');
    expect(formatScore({ ...item, score: null, score_kind: null })).toBe('');
  });
});

describe('brightness', () => {
  it('runs from a quarter to four times, doubling every four steps', () => {
    expect(brightnessOf(0)).toBe(1);
    expect(brightnessOf(4)).toBe(2);
    expect(brightnessOf(-4)).toBe(0.5);
    expect(brightnessOf(BRIGHTNESS_STEPS.min)).toBe(0.25);
    expect(brightnessOf(BRIGHTNESS_STEPS.max)).toBe(4);
    expect(brightnessOf(1)).toBe(1.19);
  });
});
