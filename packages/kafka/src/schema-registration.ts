import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { canonicalSchema, subjectOf, type CanonicalTopic } from '@ampflow/contracts';
import { DependencyError } from '@ampflow/runtime';

/**
 * Sets BACKWARD compatibility on `<topic>-value` and registers the schema under it (registering the same
 * schema again returns its existing id). A schema the registry refuses as incompatible is a deployment
 * error, reported as such; anything else (the registry unreachable) is retriable.
 */
export async function registerCanonicalSchema(
  registry: SchemaRegistry,
  registryUrl: string,
  topic: string,
  schemaOf: CanonicalTopic,
): Promise<number> {
  return registerSubjectSchema(registry, registryUrl, subjectOf(topic), canonicalSchema(schemaOf));
}

/**
 * Sets BACKWARD compatibility on `subject` and registers the Avro `schema` (JSON text) under it; resolves to its
 * id. Throws a plain `Error` when the registry refuses the schema as incompatible (a deployment error that no
 * retry mends) and a retriable {@link DependencyError} `registry_unavailable` for anything else.
 */
export async function registerSubjectSchema(
  registry: SchemaRegistry,
  registryUrl: string,
  subject: string,
  schema: string,
): Promise<number> {
  let res: Response;
  try {
    res = await fetch(`${registryUrl.replace(/\/$/, '')}/config/${encodeURIComponent(subject)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ compatibility: 'BACKWARD' }),
      signal: AbortSignal.timeout(5_000),
    });
  } catch (err) {
    throw new DependencyError('registry_unavailable', 'the schema registry did not answer', { cause: err });
  }
  if (!res.ok)
    throw new DependencyError(
      'registry_unavailable',
      `setting compatibility of ${subject} answered ${res.status}`,
    );
  try {
    const { id } = await registry.register({ type: SchemaType.AVRO, schema }, { subject });
    return id;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === 409) {
      throw new Error(
        `the registry refuses the schema of ${subject} as incompatible (BACKWARD): ${(err as Error).message}`,
      );
    }
    throw new DependencyError('registry_unavailable', `registering ${subject} failed`, { cause: err });
  }
}
