import { z } from 'zod';
import { duration } from './units.js';

export const reloadSchema = z.strictObject({
  watch: z
    .boolean()
    .default(true)
    .meta({ description: 'Reload when the config file changes (SIGHUP and POST /admin/reload always work).' }),
  debounce: duration.default(200).meta({ description: 'Wait this long after the last change before reloading.' }),
});
