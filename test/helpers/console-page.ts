/**
 * Shared by the console's browser tests: Chromium's arguments, the artifacts directory
 * (screenshots, page weight; gitignored), and reading what a view shows.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import type { Page } from "playwright-core";

/** test/artifacts/: screenshots (console-*.png) and console-weight.json. */
export const ARTIFACTS = join(fileURLToPath(new URL("..", import.meta.url)), "artifacts");
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"];

/** Text of every cell of `tbody`'s rows. */
export const cells = (p: Page, tbody: string) => p.$$eval(`${tbody} tr`, (trs) => trs.map((tr) => [...(tr as HTMLTableRowElement).cells].map((c) => c.textContent ?? "")));
export const int = (text: string) => Number(text.replace(/,/g, ""));
export const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `console-${name}.png`), fullPage: true });

/** Asserts the shown view has a heading and that every form control in it has a label. */
export async function expectAccessibleView(p: Page, view: string): Promise<void> {
  await p.waitForSelector(`main > section[data-view="${view}"]:not([hidden])`);
  const report = await p.evaluate((name) => {
    const section = document.querySelector(`section[data-view="${name}"]`) as HTMLElement;
    const visible = [...document.querySelectorAll("main > section")].filter((s) => !(s as HTMLElement).hidden).map((s) => (s as HTMLElement).dataset.view);
    const heading = section.querySelector("h2")?.textContent ?? null;
    const unlabelled = [...section.querySelectorAll("input, select, textarea, button")]
      .filter((c) => !(c as HTMLElement).closest("[hidden]"))
      .filter((c) => {
        const labels = (c as HTMLInputElement).labels;
        const named = (labels && labels.length > 0) || c.getAttribute("aria-label") || (c.tagName === "BUTTON" && c.textContent!.trim() !== "");
        return !named;
      })
      .map((c) => c.outerHTML);
    const headerless = [...section.querySelectorAll("thead th")].filter((th) => th.getAttribute("scope") !== "col").length;
    return { visible, heading, unlabelled, headerless };
  }, view);
  expect(report.visible).toEqual([view]);
  expect(report.heading).toBeTruthy();
  expect(report.unlabelled).toEqual([]);
  expect(report.headerless).toBe(0);
}

