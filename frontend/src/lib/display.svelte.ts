/**
 * How cutouts are shown: the brightness of the stretch (kept in the browser between visits),
 * their addresses, and preloading a page's images before it is shown.
 *
 * The server renders each brightness as its own PNG (cached on its disk and in the browser),
 * so the grid, the detail view and the preloader must ask for the very same addresses.
 *
 * Preloading waits while the page on screen still loads its own images ({@link Display.hold}):
 * the browser opens only six connections to the server, and the next page's images must not
 * take them from the images the user is waiting for.
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

  private holds = 0;
  private waiting: (() => void)[] = [];

  /** Hold preloading until the returned function is called (once). */
  hold(): () => void {
    this.holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      if (this.holds === 0) for (const run of this.waiting.splice(0)) run();
    };
  }

  /** Load a page's images into the browser's cache, once nothing holds preloading. */
  preload = (page: Page<GridItem>): void => {
    const run = () => {
      for (const item of page.items) {
        const image = new Image();
        image.decoding = 'async';
        image.fetchPriority = 'low';
        image.src = this.cutoutSrc(item.object_id);
      }
    };
    if (this.holds === 0) run();
    else this.waiting.push(run);
  };
}

export const display = new Display();
