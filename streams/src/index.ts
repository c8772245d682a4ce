/**
 * @tributary/streams — topic → topic processing on Tributary (see docs/streams.md).
 *
 *   import { StreamsBuilder, TributaryStreams, tumbling } from "@tributary/streams";
 *   const builder = new StreamsBuilder();
 *   builder.from("sensor-data").groupByKey().windowedBy(tumbling(60_000, { grace: 10_000 })).count().to("counts");
 *   await new TributaryStreams(builder, { url: "ws://127.0.0.1:8080", applicationId: "counts" }).start();
 *
 * Internals (tasks, stores, the outbox) are not exported.
 */
export { StreamsBuilder, KStream, KGroupedStream, TimeWindowedKStream, KTable, GlobalTable, type StoreOptions } from "./builder.ts";
export { TributaryStreams, type StreamsOptions, type StreamsMetrics, type FlushStep } from "./streams-app.ts";
export { tumbling, hopping, windowsFor, type TimeWindows, type Window, type WindowOptions } from "./windows.ts";
export { StreamsError, type StreamsErrorCode } from "./errors.ts";
export { EVENT_TIME_HEADER, WINDOW_START_HEADER, WINDOW_END_HEADER, type StreamRecord, type KeyValue, type Topology, type SourceOptions } from "./topology.ts";
export { ORIGIN_HEADER } from "./task.ts";
