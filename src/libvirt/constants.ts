/**
 * libvirt public constants the client and its users need (values from libvirt's public headers,
 * libvirt-domain.h / libvirt-host.h; they are ABI and never change).
 */

/** virDomainMigrateFlags */
export const VIR_MIGRATE = {
  LIVE: 1 << 0,
  PEER2PEER: 1 << 1,
  TUNNELLED: 1 << 2,
  PERSIST_DEST: 1 << 3,
  UNDEFINE_SOURCE: 1 << 4,
  PAUSED: 1 << 5,
  NON_SHARED_DISK: 1 << 6,
  NON_SHARED_INC: 1 << 7,
  CHANGE_PROTECTION: 1 << 8,
  UNSAFE: 1 << 9,
  OFFLINE: 1 << 10,
  COMPRESSED: 1 << 11,
  ABORT_ON_ERROR: 1 << 12,
  AUTO_CONVERGE: 1 << 13,
  RDMA_PIN_ALL: 1 << 14,
  POSTCOPY: 1 << 15,
  TLS: 1 << 16,
  PARALLEL: 1 << 17,
  NON_SHARED_SYNCHRONOUS_WRITES: 1 << 18,
  POSTCOPY_RESUME: 1 << 19,
  ZEROCOPY: 1 << 20,
} as const;

/** Typed-parameter names accepted by the *3_PARAMS migration procedures. */
export const VIR_MIGRATE_PARAM = {
  URI: 'migrate_uri',
  DEST_NAME: 'destination_name',
  DEST_XML: 'destination_xml',
  PERSIST_XML: 'persistent_xml',
  BANDWIDTH: 'bandwidth',
  BANDWIDTH_POSTCOPY: 'bandwidth.postcopy',
  GRAPHICS_URI: 'graphics_uri',
  LISTEN_ADDRESS: 'listen_address',
  MIGRATE_DISKS: 'migrate_disks',
  DISKS_PORT: 'disks_port',
  DISKS_URI: 'disks_uri',
  COMPRESSION: 'compression',
  COMPRESSION_MT_LEVEL: 'compression.mt.level',
  COMPRESSION_MT_THREADS: 'compression.mt.threads',
  COMPRESSION_MT_DTHREADS: 'compression.mt.dthreads',
  COMPRESSION_XBZRLE_CACHE: 'compression.xbzrle.cache',
  AUTO_CONVERGE_INITIAL: 'auto_converge.initial',
  AUTO_CONVERGE_INCREMENT: 'auto_converge.increment',
  PARALLEL_CONNECTIONS: 'parallel.connections',
  TLS_DESTINATION: 'tls.destination',
} as const;

/** Wire type (VIR_TYPED_PARAM_*) of each migration parameter, per libvirt-domain.h. */
export const MIGRATE_PARAM_TYPES: Readonly<Record<string, 1 | 2 | 3 | 4 | 5 | 6 | 7>> = {
  migrate_uri: 7,
  destination_name: 7,
  destination_xml: 7,
  persistent_xml: 7,
  bandwidth: 4, // MiB/s
  'bandwidth.postcopy': 4, // MiB/s
  graphics_uri: 7,
  listen_address: 7,
  migrate_disks: 7, // may repeat
  disks_port: 1,
  disks_uri: 7,
  compression: 7, // may repeat
  'compression.mt.level': 1,
  'compression.mt.threads': 1,
  'compression.mt.dthreads': 1,
  'compression.xbzrle.cache': 4, // bytes
  'auto_converge.initial': 1, // percent
  'auto_converge.increment': 1, // percent
  'parallel.connections': 1,
  'tls.destination': 7,
};

/** virDomainState */
export const VIR_DOMAIN_STATE = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;

/** virDomainEventID: what CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY subscribes to. */
export const VIR_DOMAIN_EVENT_ID = {
  LIFECYCLE: 0,
  REBOOT: 1,
  RTC_CHANGE: 2,
  WATCHDOG: 3,
  IO_ERROR: 4,
  GRAPHICS: 5,
  IO_ERROR_REASON: 6,
  CONTROL_ERROR: 7,
  BLOCK_JOB: 8,
  DISK_CHANGE: 9,
  TRAY_CHANGE: 10,
  PMWAKEUP: 11,
  PMSUSPEND: 12,
  BALLOON_CHANGE: 13,
  PMSUSPEND_DISK: 14,
  DEVICE_REMOVED: 15,
  BLOCK_JOB_2: 16,
  TUNABLE: 17,
  AGENT_LIFECYCLE: 18,
  DEVICE_ADDED: 19,
  MIGRATION_ITERATION: 20,
  JOB_COMPLETED: 21,
  DEVICE_REMOVAL_FAILED: 22,
  METADATA_CHANGE: 23,
  BLOCK_THRESHOLD: 24,
  MEMORY_FAILURE: 25,
  MEMORY_DEVICE_SIZE_CHANGE: 26,
} as const;

/** virDomainEventType: the `event` field of a lifecycle event. */
export const VIR_DOMAIN_EVENT = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;

/** Details of SUSPENDED / RESUMED / STOPPED lifecycle events that matter for migration. */
export const VIR_DOMAIN_EVENT_SUSPENDED = { PAUSED: 0, MIGRATED: 1, IOERROR: 2, WATCHDOG: 3, RESTORED: 4, FROM_SNAPSHOT: 5, API_ERROR: 6, POSTCOPY: 7, POSTCOPY_FAILED: 8 } as const;
export const VIR_DOMAIN_EVENT_RESUMED = { UNPAUSED: 0, MIGRATED: 1, FROM_SNAPSHOT: 2, POSTCOPY: 3, POSTCOPY_FAILED: 4 } as const;
export const VIR_DOMAIN_EVENT_STOPPED = { SHUTDOWN: 0, DESTROYED: 1, CRASHED: 2, MIGRATED: 3, SAVED: 4, FAILED: 5, FROM_SNAPSHOT: 6 } as const;
export const VIR_DOMAIN_EVENT_STARTED = { BOOTED: 0, MIGRATED: 1, RESTORED: 2, FROM_SNAPSHOT: 3, WAKEUP: 4 } as const;

/** virDomainStatsTypes: which groups CONNECT_GET_ALL_DOMAIN_STATS returns (0 = all supported). */
export const VIR_DOMAIN_STATS = {
  STATE: 1 << 0,
  CPU_TOTAL: 1 << 1,
  BALLOON: 1 << 2,
  VCPU: 1 << 3,
  INTERFACE: 1 << 4,
  BLOCK: 1 << 5,
  PERF: 1 << 6,
  IOTHREAD: 1 << 7,
  MEMORY: 1 << 8,
  DIRTYRATE: 1 << 9,
  VM: 1 << 10,
} as const;

/** Domain filters shared by virConnectListAllDomainsFlags and virConnectGetAllDomainStatsFlags. */
const DOMAIN_FILTERS = {
  ACTIVE: 1 << 0,
  INACTIVE: 1 << 1,
  PERSISTENT: 1 << 2,
  TRANSIENT: 1 << 3,
  RUNNING: 1 << 4,
  PAUSED: 1 << 5,
  SHUTOFF: 1 << 6,
  OTHER: 1 << 7,
} as const;

/** virConnectGetAllDomainStatsFlags */
export const VIR_CONNECT_GET_ALL_DOMAINS_STATS = {
  ...DOMAIN_FILTERS,
  NOWAIT: 1 << 29,
  BACKING: 1 << 30,
  ENFORCE_STATS: 2 ** 31, // 1U << 31: keep it positive for the unsigned wire field
} as const;

/** virConnectListAllDomainsFlags */
export const VIR_CONNECT_LIST_DOMAINS = {
  ...DOMAIN_FILTERS,
  MANAGEDSAVE: 1 << 8,
  NO_MANAGEDSAVE: 1 << 9,
  AUTOSTART: 1 << 10,
  NO_AUTOSTART: 1 << 11,
  HAS_SNAPSHOT: 1 << 12,
  NO_SNAPSHOT: 1 << 13,
} as const;

/** virDomainJobType */
export const VIR_DOMAIN_JOB = { NONE: 0, BOUNDED: 1, UNBOUNDED: 2, COMPLETED: 3, FAILED: 4, CANCELLED: 5 } as const;
/** virDomainGetJobStatsFlags */
export const VIR_DOMAIN_JOB_STATS = { COMPLETED: 1 << 0, KEEP_COMPLETED: 1 << 1 } as const;
/** virDomainAbortJobFlagsValues */
export const VIR_DOMAIN_ABORT_JOB = { POSTCOPY: 1 << 0 } as const;
/** Typed-parameter names of job statistics (GET_JOB_STATS, JOB_COMPLETED events). */
export const VIR_DOMAIN_JOB_FIELD = {
  OPERATION: 'operation',
  TIME_ELAPSED: 'time_elapsed',
  TIME_REMAINING: 'time_remaining',
  DOWNTIME: 'downtime',
  DATA_TOTAL: 'data_total',
  DATA_PROCESSED: 'data_processed',
  DATA_REMAINING: 'data_remaining',
  MEMORY_TOTAL: 'memory_total',
  MEMORY_PROCESSED: 'memory_processed',
  MEMORY_REMAINING: 'memory_remaining',
  MEMORY_BPS: 'memory_bps',
  MEMORY_DIRTY_RATE: 'memory_dirty_rate',
  MEMORY_ITERATION: 'memory_iteration',
  MEMORY_POSTCOPY_REQS: 'memory_postcopy_requests',
  DISK_TOTAL: 'disk_total',
  DISK_PROCESSED: 'disk_processed',
  DISK_REMAINING: 'disk_remaining',
  AUTO_CONVERGE_THROTTLE: 'auto_converge_throttle',
  SUCCESS: 'success',
  ERRMSG: 'errmsg',
} as const;

/** virDomainCreateFlags */
export const VIR_DOMAIN_START = { NONE: 0, PAUSED: 1 << 0, AUTODESTROY: 1 << 1, BYPASS_CACHE: 1 << 2, FORCE_BOOT: 1 << 3, VALIDATE: 1 << 4 } as const;
/** virDomainShutdownFlagValues */
export const VIR_DOMAIN_SHUTDOWN = { DEFAULT: 0, ACPI_POWER_BTN: 1 << 0, GUEST_AGENT: 1 << 1, INITCTL: 1 << 2, SIGNAL: 1 << 3, PARAVIRT: 1 << 4 } as const;
/** virDomainDestroyFlagsValues */
export const VIR_DOMAIN_DESTROY = { DEFAULT: 0, GRACEFUL: 1 << 0 } as const;
/** virDomainUndefineFlagsValues */
export const VIR_DOMAIN_UNDEFINE = { MANAGED_SAVE: 1 << 0, SNAPSHOTS_METADATA: 1 << 1, NVRAM: 1 << 2, KEEP_NVRAM: 1 << 3, CHECKPOINTS_METADATA: 1 << 4 } as const;
/** virDomainSaveRestoreFlags */
export const VIR_DOMAIN_SAVE = { BYPASS_CACHE: 1 << 0, RUNNING: 1 << 1, PAUSED: 1 << 2 } as const;
/** virDomainDefineFlags */
export const VIR_DOMAIN_DEFINE = { VALIDATE: 1 << 0 } as const;
/** virDomainXMLFlags */
export const VIR_DOMAIN_XML = { SECURE: 1 << 0, INACTIVE: 1 << 1, UPDATE_CPU: 1 << 2, MIGRATABLE: 1 << 3 } as const;
/** virCPUCompareResult */
export const VIR_CPU_COMPARE = { ERROR: -1, INCOMPATIBLE: 0, IDENTICAL: 1, SUPERSET: 2 } as const;
/** virConnectCompareCPUFlags */
export const VIR_CONNECT_COMPARE_CPU = { FAIL_INCOMPATIBLE: 1 << 0, VALIDATE_XML: 1 << 1 } as const;
/** NODE_GET_CPU_STATS / NODE_GET_MEMORY_STATS: all CPUs / all NUMA cells. */
export const VIR_NODE_CPU_STATS_ALL_CPUS = -1;
export const VIR_NODE_MEMORY_STATS_ALL_CELLS = -1;
/** virConnectFlags for CONNECT_OPEN */
export const VIR_CONNECT = { RO: 1 << 0, NO_ALIASES: 1 << 1 } as const;

/** virConnectListAllStoragePools flags (VIR_CONNECT_LIST_STORAGE_POOLS_*), the state filters. */
export const VIR_CONNECT_LIST_STORAGE_POOLS = { INACTIVE: 1 << 0, ACTIVE: 1 << 1 } as const;

/** virStoragePoolState */
export const VIR_STORAGE_POOL_STATE = { INACTIVE: 0, BUILDING: 1, RUNNING: 2, DEGRADED: 3, INACCESSIBLE: 4 } as const;
