/** The parts of the stack, in start order. */
export const INFRASTRUCTURE_PARTS = ['postgres', 'temporal', 'keycloak', 'maildev'] as const;
export const SERVICE_PARTS = ['user', 'script', 'execution', 'runner', 'gateway'] as const;
export const ALL_PARTS = [...INFRASTRUCTURE_PARTS, ...SERVICE_PARTS] as const;

export type InfrastructurePart = (typeof INFRASTRUCTURE_PARTS)[number];
export type ServicePart = (typeof SERVICE_PARTS)[number];
export type PartName = (typeof ALL_PARTS)[number];

export function isPartName(value: string): value is PartName {
  return (ALL_PARTS as readonly string[]).includes(value);
}

export function isServicePart(part: PartName): part is ServicePart {
  return (SERVICE_PARTS as readonly string[]).includes(part);
}

/**
 * Parses a part selection: `all`, `infra` (infrastructure only) or a comma list of part
 * names and the two group names. The result keeps the start order.
 */
export function parseParts(spec: string | undefined): PartName[] {
  if (spec === undefined || spec.trim() === '' || spec.trim() === 'all') return [...ALL_PARTS];
  const chosen = new Set<PartName>();
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    if (item === 'infra' || item === 'infrastructure') INFRASTRUCTURE_PARTS.forEach((p) => chosen.add(p));
    else if (item === 'services') SERVICE_PARTS.forEach((p) => chosen.add(p));
    else if (item === 'all') ALL_PARTS.forEach((p) => chosen.add(p));
    else if (isPartName(item)) chosen.add(item);
    else throw new Error(`unknown part "${item}" (known: ${ALL_PARTS.join(', ')}, infra, services, all)`);
  }
  return ALL_PARTS.filter((p) => chosen.has(p));
}
