/**
 * Showing an object's catalog row: per-band columns (flux, psfsize, psfdepth: g, r, z) as
 * three numbers, magnitudes from fluxes, and numbers at a sensible precision.
 */

export const BANDS = ['g', 'r', 'z'] as const;

/** A catalog cell as text (null/NaN: an em dash; per-band lists: "g … · r … · z …"). */
export function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) {
    if (value.length === BANDS.length) {
      return value.map((v, i) => `${BANDS[i]} ${formatCell(v)}`).join(' · ');
    }
    return value.map(formatCell).join(', ');
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return '—';
    if (Number.isInteger(value)) return String(value);
    const size = Math.abs(value);
    return size !== 0 && (size < 1e-3 || size >= 1e6) ? value.toExponential(3)
      : value.toPrecision(6).replace(/\.?0+$/, '');
  }
  return String(value);
}

/** The catalog's columns in a stable reading order: position first, then alphabetical. */
export function catalogRows(catalog: Record<string, unknown>): [string, string][] {
  const first = ['ra', 'dec'];
  const names = Object.keys(catalog).sort((a, b) => {
    const ia = first.indexOf(a);
    const ib = first.indexOf(b);
    if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    return a.localeCompare(b);
  });
  return names.map((name) => {
    const value = catalog[name];
    // positions to 0.0036″ (six decimals of a degree), as the sky viewer's links give them
    if (first.includes(name) && typeof value === 'number') return [name, value.toFixed(6)];
    return [name, formatCell(value)];
  });
}
