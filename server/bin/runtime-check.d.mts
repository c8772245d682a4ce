/** Types of runtime-check.mjs (the bin stays plain JavaScript, loaded before the compiled node). */
export declare const SUPPORTED_NODE_MAJORS: number[];
export declare function binaryName(platform: string, arch: string, modules: string): string;
export interface Runtime {
  version?: string;
  modules?: string;
  platform?: string;
  arch?: string;
  env?: Record<string, string | undefined>;
  binaryExists?: (name: string) => boolean;
}
export declare function runtimeProblem(runtime?: Runtime): string | undefined;
