/**
 * filterCovers and filtersOverlap agree exactly with the one matcher (TopicFilter.matches):
 * checked by property tests against every topic name that can tell two filters apart
 * (levels from the filters' alphabet plus a fresh one, one level deeper than either).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TopicFilter, filterCovers, filtersOverlap, isValidTopicFilter, isValidTopicName } from "./topic-filter.ts";

const LITERALS = ["a", "b", "$s", ""];
const TOPIC_LEVELS = [...LITERALS, "z"]; // "z" appears in no filter: what only a wildcard matches

const level = fc.constantFrom(...LITERALS, "+");
const filterArb = fc
  .tuple(fc.array(level, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => (hash ? [...levels.slice(0, 3), "#"] : levels).join("/"))
  .filter(isValidTopicFilter);

function topicsUpTo(depth: number): string[] {
  let frontier: string[][] = [[]];
  const out: string[] = [];
  for (let d = 1; d <= depth; d++) {
    frontier = frontier.flatMap((prefix) => TOPIC_LEVELS.map((l) => [...prefix, l]));
    for (const levels of frontier) {
      const topic = levels.join("/");
      if (isValidTopicName(topic)) out.push(topic);
    }
  }
  return out;
}
const TOPICS = topicsUpTo(5);

const cover = (p: string, f: string) => filterCovers(new TopicFilter(p), new TopicFilter(f));
const overlap = (a: string, b: string) => filtersOverlap(new TopicFilter(a), new TopicFilter(b));

describe("filter within pattern (filterCovers)", () => {
  it("covers exactly when every topic the filter matches is matched by the pattern", () => {
    fc.assert(
      fc.property(filterArb, filterArb, (p, f) => {
        const pattern = new TopicFilter(p);
        const filter = new TopicFilter(f);
        const witness = TOPICS.find((t) => filter.matches(t) && !pattern.matches(t));
        expect(filterCovers(pattern, filter), `pattern ${p} filter ${f} witness ${witness}`).toBe(witness === undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it("is reflexive and transitive", () => {
    fc.assert(fc.property(filterArb, (f) => cover(f, f)));
    fc.assert(fc.property(filterArb, filterArb, filterArb, (a, b, c) => !(cover(a, b) && cover(b, c)) || cover(a, c)), { numRuns: 2000 });
  });

  it.each([
    ["sensor-data/#", "sensor-data/+/temp", true],
    ["sensor-data/#", "sensor-data", true],
    ["sensor-data/#", "sensor-data/#", true],
    ["sensor-data/+", "sensor-data/#", false],
    ["sensor-data/+/temp", "sensor-data/d1/temp", true],
    ["sensor-data/+/temp", "sensor-data/+/+", false],
    ["sensor-data/d1/#", "sensor-data/#", false],
    ["#", "$SYS/#", false],
    ["+/#", "#", true],
    ["#", "+/#", true],
    ["+/+/#", "+/#", false],
    ["$SYS/#", "$SYS/broker/+", true],
  ])("pattern %s covers filter %s: %s", (p, f, expected) => {
    expect(cover(p, f)).toBe(expected);
  });
});

describe("filtersOverlap", () => {
  it("overlaps exactly when some topic matches both", () => {
    fc.assert(
      fc.property(filterArb, filterArb, (a, b) => {
        const x = new TopicFilter(a);
        const y = new TopicFilter(b);
        const witness = TOPICS.find((t) => x.matches(t) && y.matches(t));
        expect(filtersOverlap(x, y), `${a} vs ${b} witness ${witness}`).toBe(witness !== undefined);
      }),
      { numRuns: 2000 },
    );
  });

  it("is symmetric", () => {
    fc.assert(fc.property(filterArb, filterArb, (a, b) => overlap(a, b) === overlap(b, a)), { numRuns: 2000 });
  });

  it.each([
    ["secret/#", "#", true],
    ["secret/x", "+/y", false],
    ["a/#", "a", true],
    ["$SYS/#", "#", false],
    ["$SYS/#", "$SYS/+", true],
    ["a/+/c", "a/b/+", true],
  ])("%s overlaps %s: %s", (a, b, expected) => {
    expect(overlap(a, b)).toBe(expected);
  });
});
