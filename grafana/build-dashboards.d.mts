/** Types of build-dashboards.mjs (the dashboards as written to grafana/dashboards/<uid>.json). */
export function dashboards(): Array<{ file: string; json: string }>;
