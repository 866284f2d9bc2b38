import type {DeliveryMessage} from '../delivery/channel.js'
import {LifecycleWebhookChannel} from './lifecycle-channel.js'
import type {LifecycleHookSettings} from './webhook-settings.js'

/**
 * What `hyper2kvm notify test` sends to the lifecycle webhooks: one `test` event per enabled hook (a
 * disabled one gets nothing, as from the daemon), in the lifecycle body's shape (`event`, `timestamp`,
 * `data`), signed like every other event, whatever the hook's `events` filter says (the point is to check
 * the URL, headers and secret).
 */
export function lifecycleTestMessages(hooks: readonly LifecycleHookSettings[], id: () => string, at = new Date()): Array<{channel: LifecycleWebhookChannel; message: DeliveryMessage}> {
  return hooks
    .filter((h) => h.enabled)
    .map((h) => ({
      channel: new LifecycleWebhookChannel(h),
      message: {attempt: 1, createdAt: at, event: 'test', id: id(), payload: {data: {message: 'Test from hyper2kvm: this lifecycle webhook is configured correctly'}, event: 'test', timestamp: at.toISOString()}},
    }))
}
