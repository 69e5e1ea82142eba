public enum FuzzTargets {}
