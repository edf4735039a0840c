// The part of http-cache-semantics' API the cache uses (the package ships JSDoc, no .d.ts).

declare module 'http-cache-semantics' {
  namespace CachePolicy {
    interface Request {
      url?: string;
      method?: string;
      headers: Record<string, string>;
    }
    interface Response {
      status?: number;
      headers: Record<string, string>;
    }
    interface Options {
      shared?: boolean;
      cacheHeuristic?: number;
      immutableMinTimeToLive?: number;
      ignoreCargoCult?: boolean;
    }
    interface Revalidation {
      headers: Record<string, string>;
      synchronous: boolean;
    }
    interface Evaluation {
      response: Response | undefined;
      revalidation: Revalidation | undefined;
    }
  }
  class CachePolicy {
    constructor(request: CachePolicy.Request, response: CachePolicy.Response, options?: CachePolicy.Options);
    storable(): boolean;
    evaluateRequest(request: CachePolicy.Request): CachePolicy.Evaluation;
    responseHeaders(): Record<string, string>;
    revalidationHeaders(request: CachePolicy.Request): Record<string, string>;
    revalidatedPolicy(
      request: CachePolicy.Request,
      response: CachePolicy.Response,
    ): { policy: CachePolicy; modified: boolean; matches: boolean };
    status(): number;
    age(): number;
    maxAge(): number;
    timeToLive(): number;
    stale(): boolean;
    useStaleWhileRevalidate(): boolean;
    now(): number;
    toObject(): object;
    static fromObject(object: object): CachePolicy;
  }
  export = CachePolicy;
}
