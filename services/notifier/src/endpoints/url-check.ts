import { ValidationError } from '@ampflow/runtime';
import { checkEndpointUrl, type AddressPolicy } from '../delivery/ssrf-guard';

/**
 * The `checkUrl` for the endpoint store and the admin API: refuses, with a 400 `destination_refused`, a URL
 * whose scheme is not allowed (`https:`, or `http:` with NOTIFIER_ALLOW_HTTP) or whose host is an IP literal
 * outside the policy. Host names pass here; the sender's guarded lookup checks what they resolve to at
 * connect time, so a later DNS change cannot get around it.
 */
export function createUrlCheck(options: {
  policy: AddressPolicy;
  allowHttp: boolean;
}): (url: string) => void {
  return (url) => {
    const verdict = checkEndpointUrl(url, options);
    if (!verdict.ok) {
      throw new ValidationError('destination_refused', `url: ${verdict.error.message}`, {
        cause: verdict.error,
      });
    }
  };
}
