// mTLS transport sockets (SDS secrets by name) and RBAC filters from
// AuthorizationPolicies. Pure.
import type { AuthorizationPolicy } from '../model';
import { adsConfigSource, FILTER, headerMatcher, type Obj, TYPE, wrap } from './envoy';
import { IDENTITY_SECRET, TRUST_SECRET } from './names';

/** spiffe://<trustDomain>/service/<name> */
export function serviceSpiffeId(trustDomain: string, service: string): string {
  return `spiffe://${trustDomain}/service/${service}`;
}

function sdsSecret(name: string): Obj {
  return { name, sds_config: adsConfigSource() };
}

/** The caller side: present our identity, accept only the callee's SPIFFE id from the mesh CA. */
export function upstreamTlsSocket(calleeId: string, sni: string): Obj {
  return {
    name: FILTER.tls,
    typed_config: {
      '@type': TYPE.upstreamTls,
      sni,
      common_tls_context: {
        tls_certificate_sds_secret_configs: [sdsSecret(IDENTITY_SECRET)],
        combined_validation_context: {
          default_validation_context: {
            match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: calleeId } }],
          },
          validation_context_sds_secret_config: sdsSecret(TRUST_SECRET),
        },
      },
    },
  };
}

/** The callee side: our identity; a client certificate from the mesh CA is required. */
export function downstreamTlsSocket(trustDomain: string): Obj {
  return {
    name: FILTER.tls,
    typed_config: {
      '@type': TYPE.downstreamTls,
      require_client_certificate: wrap(true),
      common_tls_context: {
        tls_certificate_sds_secret_configs: [sdsSecret(IDENTITY_SECRET)],
        combined_validation_context: {
          default_validation_context: {
            match_typed_subject_alt_names: [
              { san_type: 'URI', matcher: { prefix: `spiffe://${trustDomain}/` } },
            ],
          },
          validation_context_sds_secret_config: sdsSecret(TRUST_SECRET),
        },
      },
    },
  };
}

type Rule = AuthorizationPolicy['spec']['rules'][number];

function pathPermission(p: string): Obj {
  if (p === '*') return { any: true };
  if (p.startsWith('*')) return { url_path: { path: { suffix: p.slice(1) } } };
  if (p.endsWith('*')) return { url_path: { path: { prefix: p.slice(0, -1) } } };
  return { url_path: { path: { exact: p } } };
}

function orOf(rules: Obj[]): Obj {
  return rules.length === 1 ? rules[0] : { or_rules: { rules } };
}

function permissions(rule: Rule, l7: boolean): Obj[] {
  if (!rule.to || !l7) return [{ any: true }];
  return [
    orOf(
      rule.to.map((t) => {
        const parts: Obj[] = [];
        if (t.methods)
          parts.push(
            orOf(t.methods.map((m) => ({ header: { name: ':method', string_match: { exact: m } } }))),
          );
        if (t.paths) parts.push(orOf(t.paths.map(pathPermission)));
        for (const [name, m] of Object.entries(t.headers ?? {}).sort())
          parts.push({ header: headerMatcher(name, m) });
        if (parts.length === 0) return { any: true };
        return parts.length === 1 ? parts[0] : { and_rules: { rules: parts } };
      }),
    ),
  ];
}

function principals(rule: Rule, trustDomain: string): Obj[] {
  if (!rule.from) return [{ any: true }];
  const ids = rule.from.map((f) => ({
    authenticated: { principal_name: { exact: serviceSpiffeId(trustDomain, f.service) } },
  }));
  return [ids.length === 1 ? ids[0] : { or_ids: { ids } }];
}

function rbacRules(
  policies: readonly AuthorizationPolicy[],
  action: 'ALLOW' | 'DENY',
  trustDomain: string,
  l7: boolean,
): Obj {
  const out: Record<string, Obj> = {};
  for (const p of policies) {
    for (const [i, rule] of p.spec.rules.entries()) {
      out[`${p.name}[${i}]`] = {
        permissions: permissions(rule, l7),
        principals: principals(rule, trustDomain),
      };
    }
  }
  return { action, policies: out };
}

/** The inbound HTTP filters' names: one filter per action, so that routes can configure each. */
export const RBAC_DENY_FILTER = 'meshplane.rbac.deny';
export const RBAC_ALLOW_FILTER = 'meshplane.rbac.allow';

/**
 * The inbound HTTP RBAC filters, configured empty (they let everything through)
 * in the listener; the rules come per route over RDS (httpRbacPerRoute), so a
 * policy change reaches open connections at once, without a listener drain.
 */
export function httpRbacFilters(): Obj[] {
  return [RBAC_DENY_FILTER, RBAC_ALLOW_FILTER].map((name) => ({
    name,
    typed_config: { '@type': TYPE.httpRbac },
  }));
}

/**
 * Per-route RBAC for a callee: a DENY set (deny wins) and, when any allow policy
 * exists, an ALLOW set (then only what an allow matches passes).
 */
export function httpRbacPerRoute(policies: readonly AuthorizationPolicy[], trustDomain: string): Obj {
  const deny = policies.filter((p) => p.spec.action === 'deny');
  const allow = policies.filter((p) => p.spec.action === 'allow');
  const perRoute = (action: 'ALLOW' | 'DENY', ps: readonly AuthorizationPolicy[]): Obj => ({
    '@type': TYPE.httpRbacPerRoute,
    rbac: { rules: rbacRules(ps, action, trustDomain, true) },
  });
  return {
    ...(deny.length > 0 ? { [RBAC_DENY_FILTER]: perRoute('DENY', deny) } : {}),
    ...(allow.length > 0 ? { [RBAC_ALLOW_FILTER]: perRoute('ALLOW', allow) } : {}),
  };
}

/** Network RBAC filters for a tcp callee: DENY first (deny wins), then ALLOW when any allow exists. */
export function networkRbacFilters(
  policies: readonly AuthorizationPolicy[],
  trustDomain: string,
  statPrefix: string,
): Obj[] {
  const deny = policies.filter((p) => p.spec.action === 'deny');
  const allow = policies.filter((p) => p.spec.action === 'allow');
  const filter = (action: 'ALLOW' | 'DENY', ps: readonly AuthorizationPolicy[]): Obj => ({
    name: FILTER.networkRbac,
    typed_config: {
      '@type': TYPE.networkRbac,
      rules: rbacRules(ps, action, trustDomain, false),
      stat_prefix: `${statPrefix}_${action.toLowerCase()}.`,
    },
  });
  return [
    ...(deny.length > 0 ? [filter('DENY', deny)] : []),
    ...(allow.length > 0 ? [filter('ALLOW', allow)] : []),
  ];
}
