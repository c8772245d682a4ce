import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["tributary-source"] },
  ssr: { resolve: { conditions: ["tributary-source"] } },
  test: {
    // Builds server/dist when a source changed: child-process tests run the compiled bin.
    globalSetup: ["test/build-setup.ts"],
    include: ["server/src/**/*.test.ts", "client-sdk/src/**/*.test.ts", "devices/src/**/*.test.ts", "streams/src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
