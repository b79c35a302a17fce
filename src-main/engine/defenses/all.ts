/** Imports every case study so that it registers itself. One line per case study. */
export {};
