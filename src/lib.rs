pub mod forge;
