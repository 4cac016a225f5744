/** The iSCSI target (RFC 7143) that serves Transports to real initiators: docs/iscsi.md. */
export { IscsiTarget, DEFAULT_ISCSI_PORT, DEFAULT_TARGET_OPTIONS, isValidIqn, type IscsiLun, type IscsiTargetConfig } from './target.js';
export type { TargetOptions } from './session.js';
export { MAX_TASK_BYTES } from './connection.js';
