/**
 * Tide's pure-TypeScript client of libvirt's remote RPC protocol (standalone: it imports nothing
 * from the rest of Tide). Start with `LibvirtConnection.open(uri)`; see docs/libvirt-rpc.md.
 */
export { LibvirtConnection } from './connection.js';
export type {
  ConnectOptions,
  ConnectionState,
  DomainInfo,
  DomainRef,
  DomainStatsRecord,
  EventSubscription,
  JobStats,
  MigrateParams,
  NodeInfo,
  ReconnectOptions,
} from './connection.js';
export { LibvirtError, TIDE_CODE_BY_VIR_ERR, VIR_ERR, VIR_FROM, VIR_ERR_LEVEL, tideCodeFor } from './errors.js';
export type { LibvirtTideCode } from './errors.js';
export * from './constants.js';
export { EVENT_DECODERS } from './events.js';
export type { DomainEventMap, DomainEventName, RawDomainEvent } from './events.js';
export { RpcClient } from './rpc.js';
export type { CallOptions, KeepaliveOptions, RpcClientOptions } from './rpc.js';
export { PacketDecoder, encodePacket } from './packet.js';
export type { Packet } from './packet.js';
export { procs, REMOTE_PROGRAM, KEEPALIVE_PROGRAM, MessageType, MessageStatus, uuidToString, uuidFromString } from './protocol.js';
export type { Domain, NumericDomainStats, ProcArgs, ProcName, ProcRet, MessageHeader, StoragePoolRef, StorageVolRef } from './protocol.js';
export { NumericDomainStatsDecoder } from './protocol.js';
export { tp, decodeTypedParams, encodeTypedParams } from './typed-params.js';
export type { TypedParams, TypedParamScalar, TypedValue } from './typed-params.js';
export { parseLibvirtUri, LibvirtUriError, DEFAULT_PORTS } from './uri.js';
export type { LibvirtUri, Transport } from './uri.js';
export { openTransport, localSocketPath, tlsFilePaths, DEFAULT_PKI, systemSshArgs, remoteProxyCommand, verifyHostKey } from './transport.js';
export type { TransportOptions, TransportHandle } from './transport.js';
export * as xdr from './xdr.js';
