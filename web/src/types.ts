// The JSON the Vigil API serves, as the console reads it. Each type names the Go type it
// mirrors; fields the console does not use are left out.

/** controller.Node */
export interface GraphNode {
  id: string;
  kind: NodeKind;
  label: string;
  group?: string;
}

export type NodeKind = 'group' | 'workload' | 'host' | 'external' | 'internal' | 'address';

/** controller.Edge */
export interface GraphEdge {
  source: string;
  target: string;
  proto: string;
  port: number;
  app: string;
  flows: number;
  bytes: number;
  first_seen: string;
  last_seen: string;
}

/** controller.Graph */
export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  workload_edges: GraphEdge[];
  dropped_edges: number;
}

/** flow.Process */
export interface Process {
  pid: number;
  comm: string;
  exe: string;
  uid: number;
}

/** flow.Endpoint */
export interface Endpoint {
  ip: string;
  port: number;
  kind: 'workload' | 'host' | 'external' | 'internal' | 'address';
  workload?: string;
  name?: string;
  group?: string;
  process?: Process;
}

/** flow.Record */
export interface FlowRecord {
  id: number;
  proto: string;
  client: Endpoint;
  server: Endpoint;
  app: string;
  bytes: number;
  packets: number;
  first_seen: string;
  last_seen: string;
  state: string;
  verdict?: string; // allow, learn, violate, deny
  rule_id?: string;
  end?: string;
}

/** flow.Event */
export interface FlowEvent {
  type: 'start' | 'update' | 'end';
  flow: FlowRecord;
}

/** controller.Event */
export interface VigilEvent {
  id: number;
  time: string;
  type: string;
  severity: string;
  summary: string;
  detail?: Record<string, unknown>;
}

/** workload.Workload */
export interface Workload {
  id: string;
  name: string;
  kind: 'container' | 'host';
  image: string;
  group: string;
  labels: Record<string, string> | null;
  state: string;
  pid: number;
  ips: string[] | null;
  privileged: boolean;
  user: string;
}

/** workload.Group */
export interface WorkloadGroup {
  name: string;
  members: { id: string; name: string }[];
}

export type Mode = 'discover' | 'monitor' | 'protect';

/** policy.Group */
export interface PolicyGroup {
  name: string;
  origin: 'learned' | 'custom';
  criteria?: string[];
  mode: Mode;
}

/** policy.Rule */
export interface Rule {
  id: string;
  from: string;
  to: string;
  ports: string[];
  apps?: string[];
  action: 'allow' | 'deny';
  origin: 'learned' | 'user' | 'imported';
  hits: number;
  last_hit?: string;
  created?: string;
}

/** controller.PolicyView */
export interface PolicyView {
  default_mode: Mode;
  groups: PolicyGroup[];
  rules: Rule[];
}

/** controller.SimResult */
export interface SimResult {
  from: string;
  to: string;
  proto: string;
  port: number;
  app: string;
  verdict: string;
  flows: number;
  clients: string[] | null;
  first_seen: string;
  last_seen: string;
}

/** The answer of POST /api/v1/policy/simulate. */
export interface Simulation {
  mode: string;
  flows_replayed: number;
  not_allowed: SimResult[];
}

/** audit.Result */
export interface AuditResult {
  id: string;
  section: string;
  title: string;
  level: number;
  scored: boolean;
  status: 'PASS' | 'WARN' | 'INFO' | 'NOTE' | 'SKIP';
  reason?: string;
  evidence?: string[];
  targets?: { kind: string; id?: string; name: string }[];
  remediation?: string;
}

/** audit.Report */
export interface AuditReport {
  benchmark: string;
  host: string;
  docker_version: string;
  rootless: boolean;
  started_at: string;
  duration: string;
  results: AuditResult[];
  summary: { pass: number; warn: number; info: number; note: number; skip: number; total: number; score: number };
}

/** scan.Package */
export interface ScanPackage {
  name: string;
  version: string;
  ecosystem: string;
  purl?: string;
  location?: string;
}

/** scan.Finding */
export interface Finding {
  id: string;
  aliases?: string[];
  summary?: string;
  severity: string; // unknown, low, medium, high, critical
  score?: number;
  cvss_vector?: string;
  package: ScanPackage;
  fixed_version?: string;
  references?: string[];
  in_use?: boolean;
}

/** scan.Report (Inventory embedded) */
export interface ScanReport {
  target: { kind: string; name: string; id?: string };
  os?: { id: string; version_id?: string; pretty_name?: string };
  packages?: ScanPackage[];
  warnings?: string[];
  findings: Finding[] | null;
  scanned_at: string;
  db_age_ns?: number;
  /** From the server's per-workload view: the container's image, the scan's state and error. */
  image?: string;
  state?: string;
  error?: string;
}

/** api.Health */
export interface Health {
  status: string;
  version: string;
  uptime: string;
  workloads: number;
}
