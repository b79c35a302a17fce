/** Imports every case study so that it registers itself. One line per case study. */
import './detector';
import './adversarial-training';
import './distillation';
import './thermometer';
export {};
