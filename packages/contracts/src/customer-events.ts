/** Every customer webhook event type the notifier delivers: public names (docs/contract.md, "Customer events"). */
export const CUSTOMER_EVENT_TYPES = [
  'charging_session.started',
  'charging_session.updated',
  'charging_session.ended',
  'vehicle.plugged_in',
  'vehicle.unplugged',
  'vehicle.telemetry',
  'command.result',
  'device.connected',
  'device.disconnected',
  'vehicle.error',
] as const;

export type CustomerEventType = (typeof CUSTOMER_EVENT_TYPES)[number];
