// Module resolution hook: resolves workspace packages (@tributary/client) to their
// TypeScript sources through the "tributary-source" export condition.
export async function resolve(specifier, context, next) {
  return next(specifier, { ...context, conditions: [...context.conditions, "tributary-source"] });
}
