/**
 * How cutouts are shown: the brightness of the stretch (kept in the browser between visits),
 * their addresses, and preloading a page's images before it is shown.
 *
 * The server renders each brightness as its own PNG (cached on its disk and in the browser),
 * so the grid, the detail view and the preloader must ask for the very same addresses.
 */

import { api } from '../api';
import { brightnessOf, BRIGHTNESS_STEPS, type GridItem } from './grid.ts';
import type { Page } from './pages.svelte.ts';

const STORAGE_KEY = 'galsearch.brightness-step';
/** Pixels of the detail view's cutout. */
export const DETAIL_SIZE = 304;

function storedStep(): number {
  const step = Number(globalThis.localStorage?.getItem(STORAGE_KEY));
  return Number.isInteger(step) && step >= BRIGHTNESS_STEPS.min && step <= BRIGHTNESS_STEPS.max
    ? step : 0;
}

class Display {
  brightnessStep = $state(storedStep());
  readonly brightness = $derived(brightnessOf(this.brightnessStep));

  setBrightnessStep(step: number): void {
    this.brightnessStep = Math.min(BRIGHTNESS_STEPS.max, Math.max(BRIGHTNESS_STEPS.min, step));
    globalThis.localStorage?.setItem(STORAGE_KEY, String(this.brightnessStep));
  }

  cutoutSrc(objectId: number, size?: number): string {
    return api.cutoutUrl(objectId, { size, brightness: this.brightness });
  }

  /** Start loading a page's images, so that showing the page finds them in the cache. */
  preload = (page: Page<GridItem>): void => {
    for (const item of page.items) {
      const image = new Image();
      image.decoding = 'async';
      image.src = this.cutoutSrc(item.object_id);
    }
  };
}

export const display = new Display();
