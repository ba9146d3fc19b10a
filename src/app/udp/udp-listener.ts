/**
 * The UDP listener kind: binds a listener whose config has `udp` (pen's -U, `protocol: udp`)
 * through a UdpRelay, which becomes the listener's `udp` (its sessions and counters). Registered
 * in listeners.ts by one line; everything else of UDP lives in this folder.
 */
import type { Address } from '../../core/address.ts';
import type { ListenHandle } from '../../dataplane/bun-tcp.ts';
import { UdpRelay, type UdpRelayHost } from './udp-relay.ts';

/** A listener that can carry a relay (app's ListenerRuntime). */
export interface UdpCapable extends UdpRelayHost {
  udp: UdpRelay | null;
}

/** Binds `address` for UDP; the handle's stop() ends the listener's sessions. */
export function bindUdp(l: UdpCapable, address: Address): ListenHandle {
  if (address.kind !== 'tcp') throw new Error(`a UDP listener needs a host:port, not the Unix socket ${address.path}`);
  const relay = new UdpRelay(l);
  const socket = relay.bind(address.host === '' ? '0.0.0.0' : address.host, address.port);
  l.udp = relay;
  return {
    address,
    port: socket.port,
    stop: () => {
      relay.stop();
      // A rebind (pen's `listen`) binds the new relay first: only this one's own link goes.
      if (l.udp === relay) l.udp = null;
    },
  };
}
