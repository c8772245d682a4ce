/**
 * The config of an in-process test node: loopback, free ports, a temp data dir, no fsync,
 * errors-only logging, MQTT off unless asked; sections given in `overrides` are merged
 * into the defaults (one level deep).
 */
import { DEFAULT_CONFIG, type TributaryConfig } from "../../server/src/config/config.ts";

export interface NodeConfigOverrides {
  topics?: Partial<TributaryConfig["topics"]>;
  limits?: Partial<TributaryConfig["limits"]>;
  mqtt?: Partial<TributaryConfig["mqtt"]>;
  log?: TributaryConfig["log"];
}

export function testNodeConfig(dataDir: string, overrides: NodeConfigOverrides = {}): TributaryConfig {
  return {
    ...DEFAULT_CONFIG,
    dataDir,
    host: "127.0.0.1",
    port: 0,
    file: { ...DEFAULT_CONFIG.file, fsync: "never" },
    topics: { ...DEFAULT_CONFIG.topics, ...overrides.topics },
    limits: { ...DEFAULT_CONFIG.limits, ...overrides.limits },
    mqtt: { ...DEFAULT_CONFIG.mqtt, enabled: false, port: 0, ...overrides.mqtt },
    log: overrides.log ?? { level: "error" },
  };
}
