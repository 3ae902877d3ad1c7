import { describe, expect, it } from 'vitest';
import { catalogRows, formatCell } from './catalog';

describe('formatCell', () => {
  it('writes numbers at a readable precision', () => {
    expect(formatCell(150.123456789)).toBe('150.123');
    expect(formatCell(2)).toBe('2');
    expect(formatCell(0.5)).toBe('0.5');
    expect(formatCell(0.000123)).toBe('1.230e-4');
    expect(formatCell(0)).toBe('0');
  });

  it('labels per-band columns by band and marks missing values', () => {
    expect(formatCell([1.5, 2.25, null])).toBe('g 1.5 · r 2.25 · z —');
    expect(formatCell(null)).toBe('—');
    expect(formatCell(Number.NaN)).toBe('—');
    expect(formatCell('DEV')).toBe('DEV');
    expect(formatCell([1, 2])).toBe('1, 2');
  });
});

describe('catalogRows', () => {
  it('puts the position first and the rest in alphabetical order', () => {
    const rows = catalogRows({ flux: [1, 2, 3], dec: -2, ebv: 0.02, ra: 150 });
    expect(rows.map(([name]) => name)).toEqual(['ra', 'dec', 'ebv', 'flux']);
    expect(rows[0]).toEqual(['ra', '150.000000']);
    expect(rows[1]).toEqual(['dec', '-2.000000']);
  });
});
