export const BERTH_RUNTIME_VERSION = "0.1.0";
