export * from "./frames.ts";
export * from "./codec.ts";
export * from "./validate.ts";
