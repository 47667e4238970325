// The metrics llc-ops writes for node_exporter's textfile collector (DESIGN.md §9): the one list that the
// writers, the alert rules, the dashboard and docs/observability.md are checked against.
export interface MetricName {
  name: string;
  help: string;
  labels: readonly string[];
  /** Textfile written by this script. */
  file: 'llc_backup.prom' | 'llc_verify.prom' | 'llc_rotate.prom';
}

export const METRICS = {
  backupLastRunStatus: { name: 'llc_backup_last_run_status', help: '0 if the last backup-all run failed; 1 once a run of every configured source succeeded (a successful --only run does not clear a 0)', labels: [], file: 'llc_backup.prom' },
  backupLastRunTimestamp: { name: 'llc_backup_last_run_timestamp_seconds', help: 'Unix time the last backup-all run ended', labels: [], file: 'llc_backup.prom' },
  backupLastSuccessTimestamp: { name: 'llc_backup_last_success_timestamp_seconds', help: 'Unix time of the last successful backup of each source (unchanged by a failed run)', labels: ['source'], file: 'llc_backup.prom' },
  backupDuration: { name: 'llc_backup_duration_seconds', help: 'Duration of each source the last time a backup-all run backed it up', labels: ['source'], file: 'llc_backup.prom' },
  backupSize: { name: 'llc_backup_size_bytes', help: 'Bytes written for each source by the last successful backup', labels: ['source'], file: 'llc_backup.prom' },
  verifyLastRunStatus: { name: 'llc_verify_last_run_status', help: '1 if the last verify-latest run at this level passed, 0 if it failed', labels: ['level'], file: 'llc_verify.prom' },
  verifyLastRunTimestamp: { name: 'llc_verify_last_run_timestamp_seconds', help: 'Unix time the last verify-latest run at this level ended', labels: ['level'], file: 'llc_verify.prom' },
  verifyLastSuccessTimestamp: { name: 'llc_verify_last_success_timestamp_seconds', help: 'Unix time of the last passing verify-latest run at this level', labels: ['level'], file: 'llc_verify.prom' },
  newestSetTimestamp: { name: 'llc_backup_newest_set_timestamp_seconds', help: 'Start time of the newest complete backup set', labels: [], file: 'llc_verify.prom' },
  rotateLastRunStatus: { name: 'llc_rotate_last_run_status', help: '1 if the last rotate run succeeded, 0 if it failed', labels: [], file: 'llc_rotate.prom' },
  rotateLastRunTimestamp: { name: 'llc_rotate_last_run_timestamp_seconds', help: 'Unix time the last rotate run ended', labels: [], file: 'llc_rotate.prom' },
  rotateSetsKept: { name: 'llc_rotate_sets_kept', help: 'Complete sets kept by the last rotate run', labels: [], file: 'llc_rotate.prom' },
  rotateSetsRemoved: { name: 'llc_rotate_sets_removed', help: 'Sets removed by the last rotate run', labels: [], file: 'llc_rotate.prom' },
} as const satisfies Record<string, MetricName>;

export const METRIC_NAMES: string[] = Object.values(METRICS).map((m) => m.name);
