// Re-exported for tests: the tool checks live in lib/ because the demo and check-migrations use them too.
export { hasTool, requireTools } from '../../lib/tools.ts';
