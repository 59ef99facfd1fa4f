import { emptyTelemetry, type ChargingSession, type VehicleTelemetry } from '@ampflow/contracts';

const H = 3600_000;
const DAY = Date.parse('2025-09-01T00:00:00.000Z');

/**
 * A fleet's day in two phases, for tests that lose Redis between (or during) them. Every vehicle's readings
 * are in `occurredAt` order within each phase, and phase B follows phase A per vehicle. Five kinds of vehicle,
 * each a different way a lost state shows:
 * - `continues`: a session open at the end of A goes on and ends in B (a lost state starts a second one);
 * - `idle`: a session open at the end of A gets no more readings (only its deadline ends it);
 * - `midSession`: the first session is open at the end of A, ends in B, and a second one stays open;
 * - `echo`: B holds a redelivery and a late reading of A's (a lost state takes them for news);
 * - `capacity`: the battery capacity is known from A only, and B's session is estimated from SOC with it.
 */
export interface FleetScenario {
  phaseA: VehicleTelemetry[];
  phaseB: VehicleTelemetry[];
  vehicles: string[];
  /** Sessions the inactivity timeout (the sweeper) ends after phase B. */
  expectedTimeouts: number;
  /** Sessions open at the end of phase A. */
  openAfterA: number;
}

export function fleetScenario(run: string, vehicleCount = 200): FleetScenario {
  let seq = 0;
  const phaseA: VehicleTelemetry[] = [];
  const phaseB: VehicleTelemetry[] = [];
  const vehicles: string[] = [];
  let expectedTimeouts = 0;
  let openAfterA = 0;

  for (let i = 0; i < vehicleCount; i++) {
    const provider = i % 2 === 0 ? 'smartcar' : 'telematica';
    const vehicleId = `${provider}:${run}-v${i}`;
    vehicles.push(vehicleId);
    // Stagger start times so the sessions are not all alike.
    const o = (i % 7) * 0.13;
    const at = (hour: number, fields: Partial<VehicleTelemetry>): VehicleTelemetry => {
      seq += 1;
      return {
        ...emptyTelemetry({
          eventId: `${provider}:${run}-e${seq}`,
          provider,
          vehicleId,
          providerVehicleId: `${run}-v${i}`,
          userId: null,
          occurredAt: DAY + (hour + o) * H,
          receivedAt: DAY + (hour + o) * H + 1_000,
          sourceEventType: provider === 'smartcar' ? 'VEHICLE_STATE' : 'vehicle.charging-status',
        }),
        ...fields,
      };
    };
    const plugIn = at(1, { isPluggedIn: true, isCharging: false, stateOfChargePercent: 20 });
    switch (i % 5) {
      case 0: // continues
        phaseA.push(
          plugIn,
          at(2, { isCharging: true, stateOfChargePercent: 20, energyAddedKwh: 0, chargePowerKw: 7 }),
          at(2.5, { isCharging: true, stateOfChargePercent: 35, energyAddedKwh: 5, chargePowerKw: 11 }),
          at(3, { isCharging: false, stateOfChargePercent: 45, energyAddedKwh: 9 }),
          at(5, { isCharging: true, stateOfChargePercent: 45, chargePowerKw: 7 }),
          at(5.5, { isCharging: true, stateOfChargePercent: 55, chargePowerKw: 9 }),
        );
        phaseB.push(
          at(6, { isCharging: true, stateOfChargePercent: 65, chargePowerKw: 22 }),
          at(6.5, { isPluggedIn: false, stateOfChargePercent: 70 }),
        );
        openAfterA += 1;
        break;
      case 1: // idle
        phaseA.push(
          { ...plugIn, batteryCapacityKwh: 75 },
          at(2, { isCharging: true, stateOfChargePercent: 20, chargePowerKw: 7 }),
          at(3, { chargingState: 'FULLY_CHARGED', isCharging: false, stateOfChargePercent: 100 }),
          at(8, { isCharging: true, stateOfChargePercent: 90, chargePowerKw: 3 }),
          at(8.2, { isCharging: true, stateOfChargePercent: 92, chargePowerKw: 4 }),
        );
        openAfterA += 1;
        expectedTimeouts += 1;
        break;
      case 2: // midSession
        phaseA.push(
          plugIn,
          at(2, { isCharging: true, chargingState: 'CHARGING', stateOfChargePercent: 30, energyAddedKwh: 0 }),
          at(2.5, { isCharging: true, stateOfChargePercent: 40, energyAddedKwh: 6, chargePowerKw: 50 }),
        );
        phaseB.push(
          at(3, { isCharging: true, stateOfChargePercent: 50, energyAddedKwh: 12, chargePowerKw: 40 }),
          at(3.5, { isCharging: false, stateOfChargePercent: 55, energyAddedKwh: 15 }),
          at(6, { isCharging: true, stateOfChargePercent: 55, chargePowerKw: 7 }),
        );
        openAfterA += 1;
        expectedTimeouts += 1;
        break;
      case 3: {
        // echo
        const start = at(2, { isCharging: true, isPluggedIn: true, stateOfChargePercent: 10 });
        phaseA.push(
          plugIn,
          start,
          at(2.5, { isCharging: true, stateOfChargePercent: 30, chargePowerKw: 11 }),
          at(3, { isPluggedIn: false, stateOfChargePercent: 35 }),
        );
        phaseB.push({ ...start }, at(2.7, { isCharging: true, stateOfChargePercent: 33 }));
        break;
      }
      default: // capacity
        phaseA.push(
          { ...plugIn, batteryCapacityKwh: 50 },
          at(2, { isCharging: true, stateOfChargePercent: 20 }),
          at(3, { isCharging: false, stateOfChargePercent: 40 }),
        );
        phaseB.push(
          at(10, { isCharging: true, isPluggedIn: true, stateOfChargePercent: 40 }),
          at(11, { isCharging: true, stateOfChargePercent: 60, chargePowerKw: 11 }),
          at(12, { isPluggedIn: false, stateOfChargePercent: 70 }),
        );
    }
  }
  return { phaseA, phaseB, vehicles, expectedTimeouts, openAfterA };
}

/** One record per (sessionId, version); a change seen twice must be identical (else `conflicts` names it). */
export function distinctChanges(sessions: ChargingSession[]): {
  changes: Map<string, ChargingSession>;
  conflicts: string[];
} {
  const changes = new Map<string, ChargingSession>();
  const conflicts: string[] = [];
  for (const s of sessions) {
    const key = `${s.sessionId}:${s.version}`;
    const seen = changes.get(key);
    if (seen && JSON.stringify(seen) !== JSON.stringify(s)) conflicts.push(key);
    changes.set(key, s);
  }
  return { changes, conflicts };
}

/** How a run's sessions differ from a reference run's, as counts a report can quote. */
export interface SessionsDiff {
  referenceChanges: number;
  changes: number;
  /** Changes of the reference run that this run lacks. */
  missing: number;
  /** Changes this run has and the reference does not. */
  extra: number;
  /** Same (sessionId, version), different content (figures, change type). */
  different: number;
  /** The same change produced twice with different content in this run. */
  conflicting: number;
  /** STARTED for a sessionId the reference does not have: a second session where there was one. */
  extraStarted: number;
  /** Sessions the reference ended that this run never ended. */
  neverEnded: number;
}

export function diffSessions(reference: ChargingSession[], run: ChargingSession[]): SessionsDiff {
  const ref = distinctChanges(reference).changes;
  const { changes, conflicts } = distinctChanges(run);
  const refSessions = new Set([...ref.values()].map((s) => s.sessionId));
  const endedIn = (m: Map<string, ChargingSession>) =>
    new Set([...m.values()].filter((s) => s.change === 'ENDED').map((s) => s.sessionId));
  const refEnded = endedIn(ref);
  const runEnded = endedIn(changes);
  let missing = 0;
  let different = 0;
  for (const [key, s] of ref) {
    const mine = changes.get(key);
    if (!mine) missing += 1;
    else if (JSON.stringify(mine) !== JSON.stringify(s)) different += 1;
  }
  return {
    referenceChanges: ref.size,
    changes: changes.size,
    missing,
    extra: [...changes.keys()].filter((k) => !ref.has(k)).length,
    different,
    conflicting: conflicts.length,
    extraStarted: [...changes.values()].filter((s) => s.change === 'STARTED' && !refSessions.has(s.sessionId))
      .length,
    neverEnded: [...refEnded].filter((id) => !runEnded.has(id)).length,
  };
}
