/**
 * The API's types: what the server sends and receives, mirroring its marshmallow schemas
 * (server/schemas/*.py, /api/openapi.json). Only types: api.ts, which sends every request,
 * re-exports them, so components import them from there.
 */

export type Role = 'owner' | 'labeler' | 'viewer';
export type LabelValue = 'accept' | 'reject' | 'unsure';

export interface User {
  id: number;
  username: string;
  is_admin: boolean;
  is_active: boolean;
  created_at: string;
  last_sign_in_at: string | null;
}

export interface Session {
  user: User;
  auth: 'session' | 'token';
  csrf_token: string | null;
}

/** A campaign's search settings; every key optional (null: not set). */
export interface CampaignSettings {
  mag_window?: number | null; // |Δmag_r| to the seed
  mag_r_min?: number | null;
  mag_r_max?: number | null;
  source_types?: string[] | null;
  probe_strategy?: ProbeStrategy | null; // the order of pages once a probe exists (default top)
  probe_unlabeled_weight?: number | null; // weight of each weak negative (default 0.1)
  handout?: boolean | null; // hand pages out so that labelers do not see the same objects
  overlap?: number | null; // with handout: labelers per object (default 1)
  handout_minutes?: number | null; // with handout: back to the pool after this (default 30)
  consensus_min_votes?: number | null; // labels an object needs for a consensus (default 1)
  consensus_tie?: 'unsure' | 'reject' | 'none' | null; // consensus of a tie (default unsure)
}

export interface Campaign {
  id: number;
  name: string;
  description: string;
  target: string;
  settings: CampaignSettings;
  created_by: string | null;
  created_at: string;
  updated_at: string;
  role: Role; // the caller's role
}

export interface CampaignInput {
  name: string;
  description?: string;
  target?: string;
  settings?: CampaignSettings;
}

export interface Member {
  user_id: number;
  username: string;
  role: Role;
  created_at: string;
}

/** One user's label on one object; value null: no label. */
export interface Label {
  campaign_id: number;
  object_id: number;
  user_id: number;
  value: LabelValue | null;
  created_at: string | null;
  updated_at: string | null;
  changed?: boolean; // writes only: whether this request changed the label
}

export interface LabelPage {
  items: Label[];
  next_after: number | null;
}

export interface HistoryEntry {
  id: number;
  campaign_id: number;
  object_id: number;
  user_id: number;
  action: 'create' | 'change' | 'delete';
  old_value: LabelValue | null;
  new_value: LabelValue | null;
  batch: string;
  undo_of_id: number | null;
  created_at: string;
}

export interface HistoryPage {
  items: HistoryEntry[];
  next_before: number | null;
}

export type SeedKind = 'object' | 'sky' | 'vector';

/** What a campaign looks for: an object, a sky position matched to one, or an uploaded cutout. */
export interface Seed {
  id: number;
  kind: SeedKind;
  object_id: number | null; // the seed object, or the object matched to the position
  ra: number | null; // degrees (sky seeds)
  dec: number | null;
  separation_arcsec: number | null; // sky seeds: distance to the matched object
  vector_dim: number | null; // uploaded cutouts: length of the representation
  note: string;
  added_by: string | null;
  created_at: string;
}

export type SeedInput =
  | { object_id: number; note?: string }
  | { ra: number; dec: number; tolerance_arcsec?: number; note?: string };

export interface Candidate {
  object_id: number;
  score: number; // what ordered the page: cosine similarity, or the probe's probability
  ra: number; // degrees
  dec: number;
  mag_r: number | null;
  handed_out_until?: string | null; // hand-out campaigns: back to the pool after this
}

export interface CandidatePage {
  items: Candidate[];
  next_cursor: string | null;
  order: 'similarity' | 'probe'; // similarity to the seeds, or the campaign's newest probe
  probe_version: number | null; // the probe version that ordered the page
  strategy: ProbeStrategy | null; // the probe's order: top, uncertainty or mix
  skipped_seeds: number[]; // seeds the server's search bundle cannot use
}

export interface Neighbour {
  object_id: number;
  score: number; // cosine similarity
}

export interface SurveyObject {
  object_id: number;
  ra: number; // degrees
  dec: number;
  mag_r: number | null;
  catalog: Record<string, unknown>; // every catalog column (per-band ones as g, r, z lists)
  viewer_url: string; // the object in the Legacy Surveys sky viewer
  neighbours: Neighbour[] | null; // null: the server has no search bundle
}

/** Whose labels a listing returns: the caller's, everyone's, or one user's. */
export type LabelOwner = 'me' | 'all' | number;

/** Location (json, query, path) -> field -> messages, as the server reports a 422. */
export type FieldErrors = Record<string, Record<string, unknown>>;

// -- the survey ------------------------------------------------------------------------------
export interface SurveyInfo {
  n: number; // objects; ids run from 0 to n - 1
  bands: string[];
  image_size: number; // cutout side, pixels
  pixel_scale_arcsec: number;
  columns: string[];
  source_types: { type: string; count: number }[] | null; // null: no source_type column
  mag_r: { min: number; max: number; median: number; missing: number } | null;
  bundle: {
    n: number;
    dim: number;
    representation: string;
    index_kind: string;
    neighbours_stored: number | null;
    mag_window: number | null;
    created: string | null;
    model_sha256: string | null;
    manifest_sha256: string;
  } | null;
}

export interface RandomObject {
  object_id: number;
  ra: number; // degrees
  dec: number;
  mag_r: number | null;
  source_type: string | null;
}

export interface RandomObjects {
  items: RandomObject[];
  matching: number; // objects the filters allow
}

// -- background jobs and the probe -----------------------------------------------------------
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type ProbeStrategy = 'top' | 'uncertainty' | 'mix';

export interface Job {
  id: number;
  kind: string; // probe, export
  campaign_id: number | null;
  status: JobStatus;
  progress: number | null; // 0..1 while running
  message: string;
  error: string | null;
  result: Record<string, unknown> | null;
  requests: number; // requests coalesced into it (label changes)
  attempts: number;
  max_attempts: number;
  worker: string | null;
  cancel_requested: boolean;
  created_by: string | null; // null: label changes asked for it
  run_after: string;
  created_at: string;
  started_at: string | null;
  heartbeat_at: string | null;
  lease_expires_at: string | null;
  finished_at: string | null;
}

/** Cross-validated metrics of a probe (absent when there were too few labels). */
export interface ProbeCrossValidation {
  C: number;
  folds: number;
  roc_auc: number;
  roc_auc_std: number;
  precision_at_top: number;
  precision_at_top_k: number;
  roc_auc_by_c: Record<string, number>;
}

export interface ProbeRun {
  version: number;
  created_at: string;
  job_id: number | null;
  bundle_sha256: string;
  representation: string;
  dim: number;
  C: number;
  intercept: number;
  n_positive: number; // accepted objects and seeds
  n_negative: number; // rejected objects
  n_unlabeled: number; // weak negatives drawn
  unlabeled_weight: number;
  label_watermark: number;
  metrics: {
    cv?: ProbeCrossValidation | null;
    cv_skipped?: string;
    c_chosen_by?: string;
    converged?: boolean;
    [key: string]: unknown;
  };
  timings: Record<string, number>; // seconds per step ('total')
}

export interface ProbeStatus {
  strategy: ProbeStrategy; // the campaign's
  unlabeled_weight: number;
  current: ProbeRun | null; // null: pages follow similarity to the seeds
  label_changes_since: number;
  job: Job | null; // the latest probe job
}

export interface ProbeRunPage {
  items: ProbeRun[];
  next_before: number | null;
}

// -- team campaigns --------------------------------------------------------------------------
export type ConsensusFilter = LabelValue | 'none';
export type ConsensusBasis = 'labels' | 'source';

export interface ConsensusRow {
  object_id: number;
  consensus: LabelValue | null;
  basis: ConsensusBasis | null;
  n_accept: number;
  n_reject: number;
  n_unsure: number;
  n_votes: number; // the team's labels
  n_source: number; // imported labels
}

export interface ConsensusPage {
  items: ConsensusRow[];
  next_after: number | null;
  rules: { min_votes: number; tie: string };
}

export interface UserRef {
  id: number;
  username: string;
}

export interface Agreement {
  fleiss: {
    kappa: number | null;
    items: number; // objects with two labels or more
    ratings: number;
    observed: number | null;
    expected: number | null;
    category_share: Record<string, number>;
    raters_min: number;
    raters_max: number;
  };
  pairs: {
    user_a: UserRef;
    user_b: UserRef;
    overlap: number; // objects both labeled
    observed: number;
    expected: number;
    kappa: number | null;
    confusion: number[][]; // 3 x 3: rows user_a's accept, reject, unsure; columns user_b's
  }[];
}

export interface LabelerProgress {
  user: UserRef;
  role: Role | null; // null: no longer a member
  counts: Record<string, number>; // current labels per value
  total: number;
  recent: number; // label writes in the window
  per_hour: number;
  last_active: string | null;
  outstanding: number; // handed out, not labeled yet
}

export interface Progress {
  window_minutes: number;
  labelers: LabelerProgress[];
  consensus: Record<ConsensusFilter, number>;
}

// -- imports and exports ---------------------------------------------------------------------
export interface ImportInput {
  file: Blob;
  fileName: string;
  into: 'seeds' | 'labels';
  source?: string; // labels: who they come from
  value?: LabelValue; // labels: the value of rows without a label column
  toleranceArcsec?: number;
  dryRun: boolean;
}

export interface ImportRowIssue {
  row: number; // 1-based data row
  reason: string;
  object_id?: number | null;
  ra?: number;
  dec?: number;
  nearest_object_id?: number;
  separation_arcsec?: number;
  second_separation_arcsec?: number;
}

export interface ImportReport {
  into: 'seeds' | 'labels';
  source: string | null;
  dry_run: boolean;
  rows: number;
  matched: number;
  written: number; // dry run: would be
  already_seeds: number;
  unmatched_count: number;
  ambiguous_count: number;
  conflicting_count: number;
  unmatched: ImportRowIssue[];
  ambiguous: ImportRowIssue[];
  conflicting: { object_id: number; rows: number[]; reason: string }[];
}

export interface LabelSource {
  source: string;
  objects: number;
  counts: Record<LabelValue, number>;
  imported_at: string;
}

export type ExportFormat = 'csv' | 'json' | 'fits' | 'hdf5' | 'zooniverse';

export interface ExportInput {
  format: ExportFormat;
  filters?: { consensus?: ConsensusFilter[]; labelers?: string[]; min_probe_score?: number };
  options?: { cutout_size?: number; validation_fraction?: number; seed?: number;
              image_size?: number };
}

export interface Export {
  id: number;
  campaign_id: number;
  format: ExportFormat;
  filters: Record<string, unknown>;
  options: Record<string, unknown>;
  probe_version: number | null;
  created_by: string | null;
  created_at: string;
  status: JobStatus;
  progress: number | null;
  message: string | null;
  error: string | null;
  row_count: number | null;
  byte_size: number | null;
  sha256: string | null;
  finished_at: string | null;
  download: string | null; // the file's address once succeeded
}
