import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["tributary-source"] },
  ssr: { resolve: { conditions: ["tributary-source"] } },
  test: {
    include: ["server/src/**/*.test.ts", "client-sdk/src/**/*.test.ts", "devices/src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
