export { Gateway, type GatewayOptions } from './listener/gateway.js';
export { loadConfigFile, parseConfigText, type LoadedConfig } from './config/load.js';
export { ConfigError, type ConfigIssue } from './config/errors.js';
export { gatewaySchema, gatewayJsonSchema, type GatewayConfig } from './config/schema/index.js';
export { readRetryHint, parseRetryAfter, parseGoDuration, parseRateLimitField, type RetryHint } from './resilience/retry-hints.js';
