/**
 * A streams instance as its own process (for crash tests): per-device windowed averages
 * `input` → `output`, the example of docs/streams.md. Options as one JSON argument. Prints
 * `started` once it joined, `progress <emitted> <flushed>` after each flush,
 * `stopped <json metrics>` after a SIGTERM (clean close), and `error <code> <message>` for
 * every error it reports.
 */
import { StreamsBuilder, TributaryStreams, tumbling, type FlushStep } from "@tributary/streams";

export interface StreamsRunnerOptions {
  url: string;
  applicationId: string;
  input: string;
  output: string;
  windowMs: number;
  graceMs: number;
  sessionTimeoutMs: number;
  /** Fault injection: SIGKILL itself right after a flush with outputs passed `step`, once it emitted at least `minEmitted` outputs. */
  dieAt?: { step: FlushStep; minEmitted: number };
}

export interface WindowAverage {
  device: string;
  start: number;
  end: number;
  count: number;
  sum: number;
  avg: number;
}

/** The topology: per key and tumbling window, count, sum and average of `value.temp`. */
export function averagesTopology(o: Pick<StreamsRunnerOptions, "input" | "output" | "windowMs" | "graceMs">): StreamsBuilder {
  const builder = new StreamsBuilder();
  builder
    .from<{ temp: number }>(o.input)
    .filter((r) => typeof r?.temp === "number")
    .groupByKey()
    .windowedBy(tumbling(o.windowMs, { grace: o.graceMs }))
    .aggregate(() => ({ count: 0, sum: 0 }), (_key, r, agg) => ({ count: agg.count + 1, sum: agg.sum + r.temp }), { name: "averages" })
    .toStream()
    .mapValues((agg, key, record): WindowAverage => ({ device: key!, start: record.window!.start, end: record.window!.end, count: agg.count, sum: agg.sum, avg: agg.sum / agg.count }))
    .to(o.output);
  return builder;
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2]!) as StreamsRunnerOptions;
  const app = new TributaryStreams(averagesTopology(o), {
    url: o.url,
    applicationId: o.applicationId,
    sessionTimeoutMs: o.sessionTimeoutMs,
    onError: (err) => process.stdout.write(`error ${err.code} ${err.message.replace(/\n/g, " ")}\n`),
    onFlushStep: (step, { outputs }) => {
      if (step === "committed") {
        const m = app.metrics();
        process.stdout.write(`progress ${m.emitted} ${m.flushed}\n`);
      }
      if (o.dieAt && step === o.dieAt.step && outputs > 0 && app.metrics().emitted >= o.dieAt.minEmitted) {
        process.stdout.write(`dying at ${step}\n`);
        process.kill(process.pid, "SIGKILL");
      }
    },
  });
  process.on("SIGTERM", () => {
    void app.close().then(() => {
      process.stdout.write(`stopped ${JSON.stringify(app.metrics())}\n`);
      process.exit(0);
    });
  });
  void app.stopped.then((err) => {
    if (err) {
      process.stdout.write(`failed ${err.code} ${err.message}\n`);
      process.exit(1);
    }
  });
  await app.start();
  process.stdout.write("started\n");
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop()!)) await main();
